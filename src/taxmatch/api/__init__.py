"""The HTTP API of DESIGN.md section 3b (see docs/api.md).

`create_app(workspace)` builds the FastAPI application; `taxmatch serve` runs it under
uvicorn. API keys live in a file of the workspace (`keys.KeyStore`), not in the DuckDB
database, so `taxmatch keys ...` works while the server holds the database.
"""

from taxmatch.api.app import create_app
from taxmatch.api.limits import ApiLimits

__all__ = ["ApiLimits", "create_app"]
