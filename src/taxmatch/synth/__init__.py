"""Synthetic populations with ground truth: a master file of returns, requests and their answers.

`generate` writes master.csv, requests.csv, truth.csv and meta.json; see the package modules for
how each kind of hard case (namesakes, Sr/Jr, twins, moves, transliterations) is built, and
`keyed` for the second noise model (requests as typed or scanned, `--noise keyed`).
"""

from taxmatch.io.master import MASTER_COLUMNS
from taxmatch.synth.cases import CASES, Case, case_counts
from taxmatch.synth.keyed import DEFAULT_NOISE, NOISE_MODELS, VARIATION_KINDS, VARIATIONS_COLUMN, variation_kind
from taxmatch.synth.requests import TRUTH_COLUMNS
from taxmatch.synth.writer import SynthSummary, generate, read_truth

__all__ = [
    "CASES",
    "DEFAULT_NOISE",
    "MASTER_COLUMNS",
    "NOISE_MODELS",
    "TRUTH_COLUMNS",
    "VARIATIONS_COLUMN",
    "VARIATION_KINDS",
    "Case",
    "SynthSummary",
    "case_counts",
    "generate",
    "read_truth",
    "variation_kind",
]
