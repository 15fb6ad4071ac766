"""Where errors become HTTP responses: always a FHIR OperationOutcome.

Expected errors (GatewayError) carry their status and issues. Anything unexpected is caught by
the observability middleware, logged with the correlation id and answered with that id only.
"""

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway.errors import GatewayError, Issue, operation_outcome

FHIR_JSON = "application/fhir+json"
_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-long", 415: "not-supported"}


def outcome_response(status: int, outcome: dict, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(outcome), status_code=status, media_type=FHIR_JSON, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> Response:
        return outcome_response(exc.status, exc.operation_outcome(), getattr(exc, "headers", None))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        code = _HTTP_CODES.get(exc.status_code, "processing")
        return outcome_response(exc.status_code, operation_outcome([Issue(message)], code), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _bad_parameters(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}", (".".join(str(p) for p in err["loc"]),))
            for err in exc.errors()
        ]
        # 422 as FastAPI answers: the body parsed but a field broke its schema (unknown code, missing field)
        return outcome_response(422, operation_outcome(issues, "invalid"))
