"""A batch's scored pairs as Arrow columns: what an engine's `score_batch` returns, engine-neutral."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from taxmatch.match.candidates import CandidatePair


@dataclass(frozen=True)
class ScoredPairs:
    """A batch's scored pairs as the query returned them (ordered by request index), and the
    level labels of their gammas: what `CandidatePair`s are made of."""

    table: pa.Table
    level_labels: tuple[tuple[str, ...], ...]  # first name, last name, dob, address, tin; gamma -1 first

    def split_before(self, request_index: int) -> tuple[ScoredPairs, ScoredPairs]:
        """The pairs of requests before `request_index`, and the rest (the table is ordered)."""
        before = pc.sum(pc.less(self.table["request_index"], request_index)).as_py() or 0
        return (
            ScoredPairs(self.table.slice(0, before), self.level_labels),
            ScoredPairs(self.table.slice(before), self.level_labels),
        )

    def of_requests(self, request_indexes: Iterable[int]) -> ScoredPairs:
        wanted = pa.array(sorted(set(request_indexes)), type=pa.int64())
        return ScoredPairs(self.table.filter(pc.is_in(self.table["request_index"], wanted)), self.level_labels)

    def best_probabilities(self) -> dict[int, float]:
        """Each request's highest match probability among its pairs (requests with pairs only)."""
        grouped = self.table.group_by("request_index").aggregate([("match_probability", "max")])
        return dict(
            zip(grouped["request_index"].to_pylist(), grouped["match_probability_max"].to_pylist(), strict=True)
        )

    def pairs(self) -> list[CandidatePair]:
        # Column by column through Arrow: a third of the cost of Python tuples row by row.
        columns = [column.to_pylist() for column in self.table.columns]
        # Gamma -1 (missing) is index 0 of each list of labels, hence the +1.
        for position, level_labels in zip(range(5, 10), self.level_labels, strict=True):
            columns[position] = [level_labels[gamma + 1] for gamma in columns[position]]
        return list(map(CandidatePair, *columns))
