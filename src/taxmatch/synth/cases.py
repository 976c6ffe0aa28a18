"""The request categories, what each expects, and how many of each a batch gets."""

from __future__ import annotations

from dataclasses import dataclass

from taxmatch.records import REJECTION_CODES, ReasonCode


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    outcome: str
    share: float  # percent of all requests
    kind: str  # household kind the case needs; "any" attaches to any ordinary filer
    feature: str = ""  # name feature forced on the target, or a household option
    code: str = ""  # expected reason code (rejections: exact; not matched: where unambiguous)


_DISCLOSED = (
    Case("clean", "DISCLOSED", 10, "any"),
    Case("moved", "DISCLOSED", 12, "mover"),
    Case("period_before_move", "DISCLOSED", 4, "mover"),
    Case("name_nickname", "DISCLOSED", 6, "single", "nickname"),
    Case("name_double_surname", "DISCLOSED", 6, "single", "double_surname"),
    Case("name_typo", "DISCLOSED", 5, "single"),
    Case("name_transliteration", "DISCLOSED", 4, "single", "transliteration"),
    Case("name_compound_given", "DISCLOSED", 3, "single", "compound"),
    Case("name_accent", "DISCLOSED", 3, "single", "accent"),
    Case("address_variant", "DISCLOSED", 6, "any"),
    Case("dob_keying_error", "DISCLOSED", 2, "dob_known", "swap"),
    Case("joint_spouse", "DISCLOSED", 4, "joint"),
    Case("sr_jr_with_dob", "DISCLOSED", 2, "sr_jr"),
    Case("twins", "DISCLOSED", 2, "twins"),
    Case("namesake", "DISCLOSED", 3, "namesake"),
    Case("housemate", "DISCLOSED", 3, "housemate"),
)
_NOT_MATCHED = (
    Case("nonfiler", "NOT_MATCHED", 3, "nonfiler", code=ReasonCode.NO_CANDIDATE.value),
    Case("nonfiler_namesake", "NOT_MATCHED", 2, "nonfiler_namesake"),
    Case("nonfiling_spouse", "NOT_MATCHED", 2, "nonfiling_spouse"),
    Case("no_return_in_period", "NOT_MATCHED", 3, "stopped", code=ReasonCode.NO_RETURN_IN_PERIOD.value),
    Case("sr_jr_no_dob", "NOT_MATCHED", 1.5, "sr_jr", code=ReasonCode.AMBIGUOUS.value),
    Case("dob_conflict", "NOT_MATCHED", 1.5, "dob_known"),
)
# Every rejection code except MALFORMED_RECORD, which only a reader can produce.
_INVALID_CODES = tuple(
    code for code in REJECTION_CODES if code not in (ReasonCode.MALFORMED_RECORD, ReasonCode.DUPLICATE_REQUEST_ID)
)
_REJECTED = tuple(
    Case(f"invalid_{code.value.lower()}", "REJECTED", 0.7, "any", code=code.value) for code in _INVALID_CODES
)
DUPLICATE = Case("duplicate_request_id", "REJECTED", 0.8, "duplicate", code=ReasonCode.DUPLICATE_REQUEST_ID.value)

CASES: tuple[Case, ...] = (*_DISCLOSED, *_NOT_MATCHED, *_REJECTED, DUPLICATE)
CASES_BY_NAME: dict[str, Case] = {case.name: case for case in CASES}


def case_counts(requests: int) -> dict[str, int]:
    """Largest-remainder split of `requests` over the shares; every case present once there is room."""
    total = sum(case.share for case in CASES)
    exact = [requests * case.share / total for case in CASES]
    counts = [int(value) for value in exact]
    order = sorted(range(len(CASES)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: requests - sum(counts)]:
        counts[i] += 1
    if requests >= 2 * len(CASES):
        for i, count in enumerate(counts):
            if count == 0:
                counts[i] = 1
                largest = max(range(len(counts)), key=lambda j: (counts[j], -j))
                counts[largest] -= 1
    return {case.name: count for case, count in zip(CASES, counts, strict=True)}
