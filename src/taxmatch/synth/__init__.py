"""Synthetic populations with ground truth: a master file of returns, requests and their answers.

`generate` writes master.csv, requests.csv, truth.csv and meta.json; see the package modules for
how each kind of hard case (namesakes, Sr/Jr, twins, moves, transliterations) is built.
"""

from taxmatch.io.master import MASTER_COLUMNS
from taxmatch.synth.cases import CASES, Case, case_counts
from taxmatch.synth.requests import TRUTH_COLUMNS
from taxmatch.synth.writer import SynthSummary, generate, read_truth

__all__ = [
    "CASES",
    "MASTER_COLUMNS",
    "TRUTH_COLUMNS",
    "Case",
    "SynthSummary",
    "case_counts",
    "generate",
    "read_truth",
]
