"""The ASGI app: the drawing page, its static files and the JSON API.

Routes: ``GET /`` (the page), ``GET /static/…`` (its script and style sheet,
shipped in the package), ``POST /api/predict``, ``GET /api/model``,
``GET /health``. Every error is a JSON ``{"error": message}`` with a status
that says whose fault it was: 400 for input that is not an image or not 28×28
pixels, 413 for a body over the limit, 500 for a bug (logged; the server goes
on serving). See ``docs/serve.md``.
"""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from typing import Any

from chainrule.serve._deps import INSTALL_HINT, MissingServeDependencyError

try:
    # chainrule.imaging decodes PNGs with Pillow; server.py runs uvicorn
    import PIL.Image  # noqa: F401
    import uvicorn  # noqa: F401
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import MutableHeaders
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:
    raise MissingServeDependencyError(f"{INSTALL_HINT} ({exc})") from exc

from chainrule import validate
from chainrule.imaging import ImageError
from chainrule.serve.inference import InputError, Predictor

#: the largest request body read, in bytes (a 280×280 drawing is a few kB)
MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger("chainrule.serve")

#: on every response: only this server's own scripts, styles and connections
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SecurityHeaders:
    """ASGI middleware that adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading;
    the stream is counted either way, so a client that omits the header or
    declares less than it sends is stopped at the limit too.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(400, f"bad Content-Length header {declared!r}")
        if int(declared) > limit:
            raise RequestError(413, _too_large(limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, _too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"request body over the limit of {limit} bytes"


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_json(body: bytes) -> object:
    """The JSON document in ``body``, or :class:`InputError` saying why not."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and bytes that are not UTF-8
        raise InputError(f"the body is not valid JSON: {exc}") from exc


def _page() -> str:
    return (
        resources.files("chainrule.serve")
        .joinpath("static/index.html")
        .read_text(encoding="utf-8")
    )


def create_app(
    model_path: str | os.PathLike[str], max_body_bytes: int = MAX_BODY_BYTES
) -> Starlette:
    """The web app for the model saved at ``model_path`` (loaded once, here).

    A missing or unreadable model file raises
    :class:`chainrule.ModelFileError` now, before any request is served.
    """
    max_body_bytes = validate.integer("create_app", "max_body_bytes", max_body_bytes)
    predictor = Predictor(model_path)
    info = {**predictor.info(), "max_body_bytes": max_body_bytes}
    page = _page()

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"cache-control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def model_info(request: Request) -> Response:
        return JSONResponse(info)

    def answer(body: bytes, as_json: bool, activations: bool) -> dict[str, Any]:
        if as_json:
            return predictor.classify_pixels(parse_json(body), activations)
        return predictor.classify_png(body, activations)

    async def predict(request: Request) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
            if not body:
                raise RequestError(
                    400, 'empty body: send PNG bytes, or JSON {"pixels": [...]}'
                )
            as_json = is_json(request.headers.get("content-type"))
            activations = request.query_params.get("activations") in ("1", "true")
            # decoding and the forward pass run on a worker thread (NumPy
            # releases the GIL), so the event loop keeps answering meanwhile
            result = await run_in_threadpool(answer, body, as_json, activations)
        except ClientDisconnect:
            # the client left mid-body: nobody to answer, nothing to log
            return Response(status_code=400)
        except RequestError as exc:
            return error_response(exc.status, exc.message)
        except (InputError, ImageError) as exc:
            return error_response(400, str(exc))
        except Exception:
            logger.exception("POST /api/predict failed")
            return error_response(500, "internal error; the server logged it")
        return JSONResponse(result)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail))

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "internal error; the server logged it")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/api/model", model_info),
            Route("/api/predict", predict, methods=["POST"]),
            Mount(
                "/static",
                StaticFiles(packages=[("chainrule.serve", "static")]),
                name="static",
            ),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )


__all__ = ["MAX_BODY_BYTES", "SECURITY_HEADERS", "create_app", "read_body"]
