"""Which methods a path allows, over every route of the application (the `Allow` header of a 405).

Starlette answers a 405 with the methods of the first route whose path matches; a path served by
two routes (GET and POST /v1/batches, from two routers) must name both. Each method is tried
against every route, included routers too, through the routes' own `matches`.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Scope

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed
