"""Reading request batches and writing outcome files (DESIGN.md section 3)."""

from taxmatch.io.outcomes import OutcomeWriter, sha256_file, spreadsheet_safe, write_manifest
from taxmatch.io.requests import RequestFileError, outcome_request_id, read_requests, read_requests_from_text

__all__ = [
    "OutcomeWriter",
    "RequestFileError",
    "outcome_request_id",
    "read_requests",
    "read_requests_from_text",
    "sha256_file",
    "spreadsheet_safe",
    "write_manifest",
]
