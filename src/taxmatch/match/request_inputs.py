"""What a batch hands an engine to score: one Arrow row per (request, address), engine-neutral."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from taxmatch.records import RequestRecord
from taxmatch.validate.dates import parse_date

_REQUEST_RAW_COLUMNS = (
    "first_name", "middle_name", "last_name", "suffix", "dob", "tin", "street", "unit", "city", "state", "zip",
)  # fmt: skip


def request_input_table(requests: Sequence[tuple[int, RequestRecord]]) -> pa.Table:
    """What a batch stages: one row per (request, address), numbered from 1 in request order.

    Pure (no database): a forked process builds the table of its half of a batch, and
    `renumbered` joins the halves into the table of the whole.
    """
    return _input_table(list(_request_input_rows(requests)))


def renumbered(inputs: pa.Table) -> pa.Table:
    """`inputs` with its rows numbered 1, 2, ... again (after halves are concatenated or filtered)."""
    return inputs.set_column(0, "unique_id", pa.array(range(1, inputs.num_rows + 1), type=pa.int64()))


def _input_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * (2 + len(_REQUEST_RAW_COLUMNS))
    return pa.table(
        {
            "unique_id": pa.array(columns[0], type=pa.int64()),
            "request_index": pa.array(columns[1], type=pa.int64()),
            **{
                column: pa.array(columns[2 + position], type=pa.string())
                for position, column in enumerate(_REQUEST_RAW_COLUMNS)
            },
        }
    )


def _request_input_rows(requests: Sequence[tuple[int, RequestRecord]]) -> Iterable[tuple[Any, ...]]:
    """One model input row per (request, address): the previous address and any prior addresses."""
    unique_id = 0
    for index, request in requests:
        addresses = [request.address, *request.prior_addresses]
        for address in addresses:
            unique_id += 1
            yield (
                unique_id,
                index,
                request.first_name,
                request.middle_name,
                request.last_name,
                request.suffix,
                _iso_date(request.dob),
                request.tin,
                address.street,
                address.unit,
                address.city,
                address.state,
                address.zip,
            )


def _iso_date(text: str | None) -> str | None:
    """The date as the model compares it (YYYY-MM-DD, zero-padded), by validation's own parser.

    One rule for both: every form validation accepts (`1980-1-2`, `1/2/1980`) compares equal to
    the return's `1980-01-02`. Text that is no date is kept as written (it cannot agree).
    """
    if not text:
        return None
    day = parse_date(text)
    return day.isoformat() if day is not None else text.strip()
