"""The HTTP API of DESIGN.md section 3b (see docs/api.md).

`create_app(workspace)` builds the FastAPI application; `taxmatch serve` runs it under
uvicorn. API keys live in a file of the workspace (`keys.KeyStore`), not in the DuckDB
database, so `taxmatch keys ...` works while the server holds the database.

The application is imported on first use: every CLI command imports `taxmatch.api.cli` (for
`keys` and `serve`), and FastAPI costs most of a second to import that a batch never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taxmatch.api.app import create_app
    from taxmatch.api.limits import ApiLimits

__all__ = ["ApiLimits", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from taxmatch.api.app import create_app

        return create_app
    if name == "ApiLimits":
        from taxmatch.api.limits import ApiLimits

        return ApiLimits
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
