"""The on-demand path's blocking in memory: master profiles by blocking key value, built at server start.

A lookup used to read its candidates with one DuckDB statement of ~9-12 ART index point reads:
~2.6 ms of CPU at 200k people, ~4 ms at 1M, most of it the statement's fixed cost (parse, bind,
optimize) and DuckDB's cell-by-cell fetch. Here the same rows are found by dictionary-free
binary searches over numpy arrays:

- per master key column (`blocking.MASTER_KEY_COLUMNS`, the columns the batch join and the point
  reads use, capped keys already NULL), the sorted 64-bit hashes of its values and, beside each,
  the position of the profile that carries it;
- per position, the profile's `return_id`, its `point_row` (the model input columns packed in one
  JSON text, as the point reads fetch them) and each key column's value.

A hash is Python's own `hash(str)` (SipHash; salted per process, and the index lives in the
process that built it). A hash hit is only a hint: a position is a candidate only when the key
column's stored value at that position equals the request's key exactly, so a collision can never
bring in a profile the batch join would not pair. What is found is exactly what
`WHERE master_column = value` finds, and the rows are the same `point_row` texts: the same pairs,
scored by the same `PythonScorer` (a test compares both reads over many requests).

Memory at 1M people (1.28M profiles, 9.3M key values): see docs/api.md ("Candidate index").
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from taxmatch.match.blocking import MASTER_KEY_COLUMNS


@dataclass(frozen=True)
class _KeyColumn:
    """One master key column: sorted value hashes, the profile position of each, the value per position."""

    hashes: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int32]
    values: pa.LargeStringArray

    def positions_of(self, value: str) -> list[int]:
        wanted = hash(value)
        start = int(self.hashes.searchsorted(wanted, side="left"))
        stop = int(self.hashes.searchsorted(wanted, side="right"))
        return [
            position
            for position in self.positions[start:stop].tolist()
            # The exact comparison: equal hashes of different values are not a match.
            if self.values[position].as_py() == value
        ]

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.positions.nbytes + self.values.nbytes)


class CandidateIndex:
    """Master profiles found by key value (`rows_of`), for one master and model version."""

    def __init__(
        self, model_version: str, return_ids: npt.NDArray[np.int64], point_rows: pa.LargeStringArray,
        keys: dict[str, _KeyColumn],
    ) -> None:  # fmt: skip
        self.model_version = model_version
        self._return_ids = return_ids
        self._point_rows = point_rows
        self._keys = keys

    @classmethod
    def build(cls, connection: duckdb.DuckDBPyConnection, model_version: str) -> CandidateIndex:
        """Read every profile's return id, point row and key columns once and index them."""
        columns = ", ".join(MASTER_KEY_COLUMNS)
        table = connection.execute(f"SELECT return_id, point_row, {columns} FROM master_profiles").to_arrow_table()
        return_ids = table.column("return_id").to_numpy().astype(np.int64)
        point_rows = _large_strings(table.column("point_row"))
        keys: dict[str, _KeyColumn] = {}
        for column in MASTER_KEY_COLUMNS:
            values = _large_strings(table.column(column))
            present = pc.is_valid(values)
            positions = np.flatnonzero(present.to_numpy(zero_copy_only=False)).astype(np.int32)
            present_values = pc.filter(values, present).to_pylist()
            hashes = np.fromiter(map(hash, present_values), dtype=np.int64, count=len(present_values))
            del present_values
            order = np.argsort(hashes)
            keys[column] = _KeyColumn(hashes[order], positions[order], values)
            table = table.drop_columns([column])  # the combined copy in `values` is what is kept
        return cls(model_version, return_ids, point_rows, keys)

    @property
    def nbytes(self) -> int:
        """The arrays' size (what the index adds to the process, give or take Python's objects)."""
        return int(self._return_ids.nbytes + self._point_rows.nbytes + sum(key.nbytes for key in self._keys.values()))

    @property
    def profiles(self) -> int:
        return len(self._return_ids)

    def positions_of(self, master_column: str, value: str) -> list[int]:
        """The positions of the profiles whose `master_column` equals `value` (none for a column not indexed)."""
        key = self._keys.get(master_column)
        return [] if key is None else key.positions_of(value)

    def return_id(self, position: int) -> int:
        return int(self._return_ids[position])

    def point_row(self, position: int) -> str:
        return str(self._point_rows[position].as_py())

    def key_value(self, master_column: str, position: int) -> str | None:
        value = self._keys[master_column].values[position].as_py()
        return None if value is None else str(value)


def _large_strings(column: pa.ChunkedArray) -> pa.LargeStringArray:
    """One contiguous array of 64-bit offsets (a 32-bit one overflows past 2 GB of text)."""
    combined = pc.cast(column, pa.large_string()).combine_chunks()
    assert isinstance(combined, pa.LargeStringArray)
    return combined


class ReturnIndex:
    """Every master return by its TIN key (`master_returns.key_tin`), for the disclosed return's read.

    The rows of `_RETURN_COLUMNS`, sorted by key_tin so that one TIN's returns are one run; the
    distinct key values' hashes, sorted, point at the runs, and the stored value decides (as in
    `_KeyColumn`). What `WHERE key_tin = value` finds, as the same values.
    """

    def __init__(
        self, model_version: str, rows: pa.Table, starts: npt.NDArray[np.int64], hashes: npt.NDArray[np.int64],
        runs: npt.NDArray[np.int32],
    ) -> None:  # fmt: skip
        self.model_version = model_version
        self._rows = rows
        self._keys = rows.column("key_tin")
        self._starts = starts  # run number -> first row; one more entry: the end
        self._hashes = hashes  # sorted hashes of the runs' key values
        self._runs = runs  # the run of each hash

    @classmethod
    def build(cls, connection: duckdb.DuckDBPyConnection, model_version: str, columns: str) -> ReturnIndex:
        """`columns`: the select list of what a return row is read as (over `master_returns m`)."""
        rows = connection.execute(
            f"SELECT {columns}, m.key_tin FROM master_returns m WHERE m.key_tin IS NOT NULL ORDER BY m.key_tin"
        ).to_arrow_table()
        keys = _large_strings(rows.column("key_tin"))
        rows = rows.set_column(rows.schema.get_field_index("key_tin"), "key_tin", keys)
        if len(keys):
            changes = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1)).to_numpy(zero_copy_only=False)
            starts = np.concatenate(([0], np.flatnonzero(changes) + 1, [len(keys)])).astype(np.int64)
        else:
            starts = np.zeros(1, dtype=np.int64)
        values = pc.take(keys, pa.array(starts[:-1])).to_pylist()
        hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
        order = np.argsort(hashes)
        return cls(model_version, rows, starts, hashes[order], order.astype(np.int32))

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes + self._starts.nbytes + self._hashes.nbytes + self._runs.nbytes)

    def rows_of(self, key: str) -> list[tuple[object, ...]]:
        """The rows (without the key) whose key_tin equals `key`, in no particular order."""
        wanted = hash(key)
        start = int(self._hashes.searchsorted(wanted, side="left"))
        stop = int(self._hashes.searchsorted(wanted, side="right"))
        for run in self._runs[start:stop].tolist():
            first, end = int(self._starts[run]), int(self._starts[run + 1])
            if self._keys[first].as_py() == key:
                found = self._rows.slice(first, end - first)
                columns = [found.column(number).to_pylist() for number in range(found.num_columns - 1)]
                return list(zip(*columns, strict=True))
        return []
