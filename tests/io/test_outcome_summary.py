"""The batch page's aggregates, read from the outcome files as the batch wrote them, in each format."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from taxmatch.explain import best_probability_words
from taxmatch.io.outcome_formats import OUTPUT_FORMATS, OutputFormat, file_name, outcome_writer
from taxmatch.io.outcome_summary import outcome_row, summarize_outcomes
from taxmatch.records import Decision, Disclosure, Outcome, ReasonCode

BASE = Disclosure(
    tin_last4="6789", first_name="Maria", middle_name="", last_name="Garcia", suffix="", street="12 Main St",
    unit="", city="Springfield", state="IL", zip="62704", tax_year=2021, match_probability=0.999731,
    evidence="name=exact", tin="123456789",
)  # fmt: skip


def decisions() -> list[Decision]:
    made = [
        Decision("d1", Outcome.DISCLOSED, disclosure=BASE),
        Decision("d2", Outcome.DISCLOSED, disclosure=dataclasses.replace(BASE, state="TX", tax_year=2019)),
        Decision("d3", Outcome.DISCLOSED, disclosure=dataclasses.replace(BASE, match_probability=1.0)),
        Decision("d4", Outcome.DISCLOSED, disclosure=dataclasses.replace(BASE, match_probability=0.96)),
        Decision("r1", Outcome.REJECTED, (ReasonCode.INVALID_ZIP,), detail="zip"),
    ]
    for request_id, probability in (("u1", 0.04), ("u2", 0.5), ("u3", 0.54999), ("u4", None), ("u5", 0.999)):
        made.append(
            Decision(request_id, Outcome.NOT_MATCHED, (ReasonCode.BELOW_THRESHOLD,), None,
                     best_probability_words(probability))
        )  # fmt: skip
    return made


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
def test_each_format_gives_the_same_summary(tmp_path: Path, output_format: OutputFormat) -> None:
    writer = outcome_writer(tmp_path, (), output_format)
    with writer:
        writer.write_rendered(writer.render(decisions()))
    summary = summarize_outcomes(
        tmp_path, file_name(Outcome.DISCLOSED, output_format), file_name(Outcome.NOT_MATCHED, output_format)
    )
    bins = dict(summary.probability_bins)
    assert list(bins) == [f"{n / 20:.2f}" for n in range(20)]
    assert bins["0.95"] == {"DISCLOSED": 4, "NOT_MATCHED": 1}  # 1.0 is in the last bin
    assert bins["0.00"] == {"DISCLOSED": 0, "NOT_MATCHED": 1}
    assert bins["0.50"] == {"DISCLOSED": 0, "NOT_MATCHED": 2}
    assert sum(sum(counts.values()) for counts in bins.values()) == 8
    assert summary.unmatched_without_candidate == 1
    assert summary.disclosed_by_state == {"IL": 3, "TX": 1}
    assert summary.disclosed_by_tax_year == {"2019": 1, "2021": 3}


def test_missing_files_are_an_empty_batch(tmp_path: Path) -> None:
    summary = summarize_outcomes(tmp_path, "disclosed.csv", "unmatched.csv")
    assert summary.disclosed_by_state == {} and summary.unmatched_without_candidate == 0
    assert all(counts == {"DISCLOSED": 0, "NOT_MATCHED": 0} for _, counts in summary.probability_bins)


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
def test_one_row_is_found_by_its_request_id_in_each_format(tmp_path: Path, output_format: OutputFormat) -> None:
    made = [*decisions(), Decision("=1+2", Outcome.DISCLOSED, disclosure=dataclasses.replace(BASE, zip="02134"))]
    writer = outcome_writer(tmp_path, (), output_format)
    with writer:
        writer.write_rendered(writer.render(made))
    disclosed = file_name(Outcome.DISCLOSED, output_format)
    row = outcome_row(tmp_path, disclosed, "d2")
    assert row is not None and row["state"] == "TX" and row["tax_year"] == "2019"
    guarded = outcome_row(tmp_path, disclosed, "=1+2")  # the CSV writes it as '=1+2
    assert guarded is not None and guarded["zip"] == "02134"  # text, not the number 2134
    assert outcome_row(tmp_path, disclosed, "u1") is None
    unmatched = outcome_row(tmp_path, file_name(Outcome.NOT_MATCHED, output_format), "u2")
    assert unmatched is not None and unmatched["reasons"].endswith("best match probability 0.500000")
    assert outcome_row(tmp_path, "missing.csv", "d2") is None
