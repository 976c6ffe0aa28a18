"""Interactive API docs served with no network: Swagger UI at /docs, ReDoc at /redoc.

FastAPI's own pages load Swagger UI from a CDN, which is a blank page on a machine with no
network. The scripts and style sheet come from the `fastapi-offline` package (Swagger UI 5,
which renders OpenAPI 3.1, and ReDoc), served by this router from the installed package.
Public like /healthz: the pages and the OpenAPI document name routes, never data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_PREFIX: Final = "/docs/assets"
_ASSETS_DIRECTORY: Final = Path(fastapi_offline.__file__).parent / "static"
# Only these files are served: a fixed list, never a path from the request.
_ASSETS: Final[dict[str, str]] = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
OPENAPI_URL: Final = "/openapi.json"
TITLE: Final = "taxmatch API"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{ASSETS_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS_PREFIX + "/{name}")
def asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, "no such asset")
    # Versioned by the installed package: a day in the browser's cache is safe.
    return FileResponse(_ASSETS_DIRECTORY / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"})
