"""One access-log line per HTTP request on the ``taxmatch.api.access`` logger.

The line holds the time, key id, method, route *template* (``/v1/batches/{batch_id}``,
never the raw path), status and latency. Bodies, query strings, names, addresses and
TINs are never logged: the route template is the only part of the URL that is written.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("taxmatch.api.access")

# The auth dependency stores the key id here in the ASGI scope (shared with this middleware).
KEY_ID_SCOPE_FIELD = "taxmatch.key_id"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            record: dict[str, Any] = {
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "key_id": scope.get(KEY_ID_SCOPE_FIELD) or "-",
                "method": scope.get("method", ""),
                "route": template,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            logger.info("%s", json.dumps(record, separators=(",", ":")))
