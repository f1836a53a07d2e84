"""How the HTTP middleware answers failures: one exception -> status + code mapping, JSON errors.

The text of every error comes from `bot.errors.user_message`; this module only picks the
HTTP status and a stable machine-readable code.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.comfy.errors import ComfyError, ComfyUnavailable, PromptRejected
from bot.errors import (
    BotError,
    ImageTooLarge,
    InvalidImage,
    NotAllowed,
    OverUploadLimit,
    QueueFull,
    TooManyJobs,
    UnknownJob,
    user_message,
)
from bot.http.board import TooManyStreams
from bot.http.guard import ForbiddenRequest
from bot.workflows.library import WorkflowError, WorkflowInputError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(BotError):
    """The request is malformed (not JSON, wrong shape); `code` says how."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class UnknownNode(BotError):
    """The served workflow has no node with that id."""


class NoImageInput(BotError):
    """The served workflow has no image input with that index (or none at all)."""


class NoPromptInput(WorkflowInputError):
    """Prompt text was given, but the served workflow has no text input for it."""


class MissingImage(WorkflowInputError):
    """A later image input has an upload but an earlier one has none."""


class Unauthorized(BotError):
    """The request lacks the API token, or carries a wrong one."""


class NotReady(BotError):
    """The job has not finished yet, so it has no outputs to fetch."""


class UnknownOutput(BotError):
    """The finished job has no output with that index."""


class UnsupportedMediaType(BotError):
    """The body is not of the type the route takes (JSON routes take only application/json)."""


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# (type, status, code), most specific first: the first the failure is an instance of decides.
_STATUSES: tuple[tuple[type[BaseException], int, str], ...] = (
    (Unauthorized, 401, "unauthorized"),
    (ForbiddenRequest, 403, "forbidden"),
    (NotAllowed, 403, "not_allowed"),
    (UnknownNode, 404, "unknown_node"),
    (UnknownJob, 404, "unknown_job"),
    (UnknownOutput, 404, "unknown_output"),
    (NotReady, 409, "not_ready"),
    (OverUploadLimit, 413, "over_upload_limit"),
    (ImageTooLarge, 413, "image_too_large"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (InvalidImage, 422, "invalid_image"),
    (NoImageInput, 422, "no_image_input"),
    (NoPromptInput, 422, "no_prompt_input"),
    (MissingImage, 422, "missing_image"),
    (WorkflowInputError, 422, "invalid_input"),
    (WorkflowError, 422, "workflow_error"),
    (TooManyJobs, 429, "too_many_jobs"),
    (QueueFull, 429, "queue_full"),
    (TooManyStreams, 429, "too_many_streams"),
    (PromptRejected, 422, "prompt_rejected"),
    (ComfyUnavailable, 503, "comfyui_unavailable"),
    (ComfyError, 502, "comfyui_error"),
    (BotError, 400, "bad_request"),
)


def classify(exc: BaseException) -> tuple[int, str]:
    """Return the HTTP status and error code for a failure; the one place this is decided."""
    if isinstance(exc, BadRequest):
        return 400, exc.code
    return next(
        ((status, code) for kind, status, code in _STATUSES if isinstance(exc, kind)),
        (500, "internal_error"),
    )


def error_code(exc: BaseException) -> str:
    """Return just the error code of a failure (for failed jobs)."""
    return classify(exc)[1]


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """Return the JSON error body every failure uses: {"error": {"code", "message"}}."""
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure of a handler, or of routing, into a JSON error response."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except (BotError, ComfyError) as exc:
        status, code = classify(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        return error_response(status, code, user_message(exc), headers=headers)
    except Exception as exc:  # the one catch point for the unexpected: log it, answer 500
        error_id = secrets.token_hex(4)
        log.exception("%s %s failed (error id %s)", request.method, request.path, error_id)
        return error_response(500, "internal_error", f"{user_message(exc)} (id {error_id})")


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, f"http_{exc.status}")
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    if exc.status == 404:
        message = f"No endpoint {request.method} {request.path}; see GET /openapi.json."
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{request.method} is not allowed on {request.path}; use {allowed}."
    elif exc.status == 413:
        message = f"The request body is too large ({exc.text}); see HTTP_MAX_BODY_BYTES."
    else:
        message = exc.text or exc.reason
    return error_response(exc.status, code, message, headers=headers)


def auth_middleware(token: str, open_paths: Collection[str]) -> Middleware:
    """Return a middleware requiring `Authorization: Bearer <token>` outside `open_paths`."""
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in open_paths:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            try:
                secret = given.strip().encode()
            except UnicodeEncodeError:  # a header byte that is not UTF-8 (0xFF): never a token
                secret = b""
            if scheme.lower() != "bearer" or not hmac.compare_digest(secret, expected):
                raise Unauthorized(
                    "This server needs its API token: send 'Authorization: Bearer <token>'."
                )
        return await handler(request)

    return require_token
