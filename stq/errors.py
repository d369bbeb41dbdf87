"""One exception tree for STQ, and the one table of the API's error answers.

Every error that can reach a user is an ``StqError``: it carries a stable
``code`` (the ``error.code`` of the HTTP error body), the HTTP status the API
answers with, and the CLI exit code. The classes the API answers with are
listed once (``ANSWERED``): the server's one error handler reads a status's
code there (falcon's own 404 and 405 included), and the client turns an
error answer back into its class through it, so the two cannot drift apart.
The CLI has exactly one place that turns an error into a line and an exit
code. A subclass without a message falls back to its docstring, so raising
``NotFound()`` still says something useful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Exit codes of every ``stq`` command (docs/cli.md).
EXIT_OK = 0
#: Unknown id, unreadable or invalid file, failed workflow.
EXIT_FAILED = 1
#: Usage error, unreachable server, refused token.
EXIT_USAGE = 2


@dataclass(frozen=True)
class Problem:
    """One located defect of a workflow document.

    ``file``/``line``/``col`` locate it in a YAML file (1-based) for the CLI;
    ``path`` locates it in the document (a JSON Pointer such as
    ``/tasks/build/max_attempts``) for the API, where there is no file.
    """

    message: str
    path: str = ""
    #: None for a document that came as JSON: then only ``path`` locates it.
    file: str | None = None
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def as_detail(self) -> dict[str, Any]:
        """The API's ``details`` entry: where in the document and what."""
        detail: dict[str, Any] = {"path": self.path, "message": self.message}
        if self.file is not None:
            detail.update(line=self.line, column=self.col)
        return detail


class StqError(Exception):
    """Something went wrong in STQ."""

    code = "error"
    http_status = 500
    exit_code = EXIT_FAILED

    def __init__(self, message: str | None = None, details: list[dict[str, Any]] | None = None):
        self.message = message or (self.__doc__ or self.code).strip().splitlines()[0]
        self.details = details or []
        super().__init__(self.message)

    def as_body(self) -> dict[str, Any]:
        """The API's error body (docs/api.md)."""
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """The API's error body: ``{"error": {"code", "message", "details"}}``, whatever failed."""
    return {"error": {"code": code, "message": message, "details": details or []}}


class BadRequest(StqError):
    """The request is malformed."""

    code = "bad_request"
    http_status = 400
    exit_code = EXIT_USAGE


class Unauthorized(StqError):
    """A valid bearer token is required: send 'Authorization: Bearer <token>'."""

    code = "unauthorized"
    http_status = 401
    exit_code = EXIT_USAGE


class Forbidden(StqError):
    """The request came from a web page of another origin."""

    code = "forbidden"
    http_status = 403
    exit_code = EXIT_USAGE


class NotFound(StqError):
    """No such id."""

    code = "not_found"
    http_status = 404


class MethodNotAllowed(StqError):
    """This path does not take that method."""

    code = "method_not_allowed"
    http_status = 405


class RequestTimeout(StqError):
    """The request body arrived too slowly: it must keep coming at 1 KiB/s or more."""

    code = "request_timeout"
    http_status = 408


class Conflict(StqError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(StqError):
    """The request body is over the 16 MiB limit."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(StqError):
    """A request body must be JSON: send 'Content-Type: application/json'."""

    code = "unsupported_media_type"
    http_status = 415


class MisdirectedRequest(StqError):
    """This server does not answer for that host name: list it in STQ_ALLOWED_HOSTS."""

    code = "misdirected_request"
    http_status = 421
    exit_code = EXIT_USAGE


class WorkflowInvalid(StqError):
    """The workflow document is invalid."""

    code = "invalid_workflow"
    http_status = 422

    def __init__(self, problems: list[Problem], message: str | None = None):
        self.problems = problems
        first = str(problems[0]) if problems else "invalid workflow"
        summary = message or (
            first if len(problems) == 1 else f"{first} (and {len(problems) - 1} more problems)"
        )
        super().__init__(summary, [p.as_detail() for p in problems])


class StoreUnavailable(StqError):
    """The store does not answer."""

    code = "store_unavailable"
    http_status = 503
    exit_code = EXIT_USAGE


#: Every error the API answers with, one class a status: the table the server's
#: handler and the client both read (docs/api.md lists it).
ANSWERED: tuple[type[StqError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    MisdirectedRequest,
    WorkflowInvalid,
    StoreUnavailable,
)
_BY_STATUS = {cls.http_status: cls for cls in ANSWERED}


def answered_for(status: int) -> type[StqError] | None:
    """The class the API answers ``status`` with, if that status is one of its own."""
    return _BY_STATUS.get(status)


class UsageError(StqError):
    """The command line is wrong: see 'stq --help'."""

    code = "usage"
    exit_code = EXIT_USAGE


class ServerUnreachable(StqError):
    """The server cannot be reached: start 'stq server' or set STQ_SERVER."""

    code = "unreachable"
    exit_code = EXIT_USAGE


class NotStqServer(UsageError):
    """The URL answers, but not as an STQ server: set --server or STQ_SERVER to its address."""

    code = "not_stq_server"
