"""Every refusal is an HTTP status and one line of JSON, ``{"error": ...}`` (the Open Inference Protocol's
error object, and the service's own): the status says whose fault it is, the line says what to change."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

MEANINGS = {
    400: "The request cannot be read: broken JSON, an empty body, a protocol request that does not hold together",
    404: "No such model on this server",
    413: "The body, or the image in it, is over the size limit",
    415: "A body that is not an image the service reads, or a Content-Encoding it does not decode",
    422: "The request reads, but does not fit: a parameter off its schema, or a body off the model's sizes and "
         "ranges (a blank image among them)",
}


class ErrorBody(BaseModel):
    """What every refusal answers."""

    error: str = Field(description="what was wrong, in one line")


class RequestError(Exception):
    """A request the service refuses: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def refusals(*statuses: int) -> dict:
    """The OpenAPI responses of a route that may refuse with these statuses."""
    return {status: {"model": ErrorBody, "description": MEANINGS[status]} for status in statuses}


def one_line(error: ValidationError | RequestValidationError, skip: frozenset[str] = frozenset()) -> str:
    """pydantic's first complaint as ``where: what`` (``pixels[3]: Input should be ...``), with the count of the
    rest; ``skip`` are the tags of a discriminated union, which name a branch and not a place in the body."""
    problems = error.errors()
    first = problems[0]
    where = ""
    for part in first["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part not in skip and part != "body":
            where += f".{part}" if where else str(part)
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def is_broken_json(error: ValidationError) -> bool:
    return error.errors()[0]["type"] == "json_invalid"


def install(app: FastAPI) -> None:
    """Error handlers: each answers one line of JSON; uvicorn logs the traceback of a fault of the service."""

    @app.exception_handler(RequestError)
    def _refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)  # a path or header parameter off its schema
    def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)  # unknown routes and methods, unparsable forms
    def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {error.detail}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    def _failed(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({error.__class__.__name__})"}, status_code=500)
