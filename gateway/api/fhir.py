"""FHIR R4B REST interactions, served by a lean ASGI lane in front of the FastAPI app.

Each route parses, calls one service function, and returns. The lane (`FhirLane`) matches
`/fhir/...` itself and calls the route directly, ahead of FastAPI's router, exception middleware
and dependency machinery: FHIR bodies are FHIR JSON validated by fhir.resources, the API is
described by /fhir/metadata (not OpenAPI), and on a stored-resource read that machinery cost
more than the read itself. What the lane does not serve (the system-level operations such as
`/fhir/$process-message`, `/fhir/.well-known/...`, and every path outside `/fhir`) goes on to
the FastAPI app. Errors become OperationOutcomes exactly as there (`gateway.api.errors`).

Every interaction but `GET /fhir/metadata` needs an access token: `_for_caller` verifies it and
hands the endpoint the FhirService as that caller may use it (scopes per interaction, the
agency's cases only; see FhirService.for_caller), and records what was refused once the
request is answered.
"""

from functools import wraps

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.deps import bounded_body, caller_policy, fhir_base, record_refusals, require_media_type
from gateway.api.errors import FHIR_JSON, outcome_response
from gateway.errors import GatewayError, MethodNotAllowed
from gateway.fhir.capability import capability_statement
from gateway.fhir.service import FhirResponse, FhirService
from gateway.fhir.transactions import process_bundle

_JSON_TYPES = ("application/fhir+json", "application/json")
_FORM = ("application/x-www-form-urlencoded",)


def fhir_response(result: FhirResponse, prefer: str | None = None) -> Response:
    body = None if prefer and "return=minimal" in prefer else result.body
    return Response(body, status_code=result.status, headers=result.headers, media_type=FHIR_JSON)


def _for_caller(endpoint):
    """The endpoint, called with the FhirService of the request's verified caller."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        policy = await caller_policy(request)
        try:
            return await endpoint(request, request.app.state.services.fhir.for_caller(policy))
        finally:
            await record_refusals(request, policy)

    return guarded


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


async def _json_body(request: Request) -> bytes:
    require_media_type(request, _JSON_TYPES)
    return await bounded_body(request)


async def metadata(request: Request) -> Response:
    profiles = request.app.state.services.fhir.profiles
    body = capability_statement(fhir_base(request), request.app.version, profiles.supported if profiles else None)
    return Response(body, media_type=FHIR_JSON)


@_for_caller
async def bundle(request: Request, service: FhirService) -> Response:
    return fhir_response(await process_bundle(service, await _json_body(request), fhir_base(request)))


@_for_caller
async def search(request: Request, service: FhirService) -> Response:
    kind = request.path_params["resource_type"]
    return fhir_response(await service.search(kind, _params(request), fhir_base(request)))


@_for_caller
async def search_post(request: Request, service: FhirService) -> Response:
    require_media_type(request, _FORM)
    form = parse_qsl((await bounded_body(request)).decode("utf-8", "replace"), keep_blank_values=True)
    kind = request.path_params["resource_type"]
    return fhir_response(await service.search(kind, _params(request) + form, fhir_base(request)))


@_for_caller
async def type_history(request: Request, service: FhirService) -> Response:
    kind = request.path_params["resource_type"]
    return fhir_response(await service.history(kind, None, _params(request), fhir_base(request)))


@_for_caller
async def create(request: Request, service: FhirService) -> Response:
    kind, body = request.path_params["resource_type"], await _json_body(request)
    result = await service.create(kind, body, fhir_base(request), request.headers.get("if-none-exist"))
    return fhir_response(result, request.headers.get("prefer"))


@_for_caller
async def read(request: Request, service: FhirService) -> Response:
    p = request.path_params
    return fhir_response(await service.read(p["resource_type"], p["resource_id"], fhir_base(request)))


@_for_caller
async def update(request: Request, service: FhirService) -> Response:
    p, body = request.path_params, await _json_body(request)
    result = await service.update(
        p["resource_type"], p["resource_id"], body, fhir_base(request), request.headers.get("if-match")
    )
    return fhir_response(result, request.headers.get("prefer"))


@_for_caller
async def delete(request: Request, service: FhirService) -> Response:
    p = request.path_params
    return fhir_response(await service.delete(p["resource_type"], p["resource_id"]))


@_for_caller
async def history(request: Request, service: FhirService) -> Response:
    p = request.path_params
    result = await service.history(p["resource_type"], p["resource_id"], _params(request), fhir_base(request))
    return fhir_response(result)


@_for_caller
async def everything(request: Request, service: FhirService) -> Response:
    return fhir_response(await service.everything(request.path_params["resource_id"], fhir_base(request)))


@_for_caller
async def vread(request: Request, service: FhirService) -> Response:
    p = request.path_params
    result = await service.vread(p["resource_type"], p["resource_id"], p["version_id"], fhir_base(request))
    return fhir_response(result)


# Order matters: fixed segments (metadata, _search, _history) before the {id} that would match them.
ROUTES = [
    Route("/fhir/metadata", metadata, methods=["GET"]),
    Route("/fhir", bundle, methods=["POST"]),
    Route("/fhir/{resource_type}", search, methods=["GET"]),
    Route("/fhir/{resource_type}", create, methods=["POST"]),
    Route("/fhir/{resource_type}/_search", search_post, methods=["POST"]),
    Route("/fhir/{resource_type}/_history", type_history, methods=["GET"]),
    Route("/fhir/{resource_type}/{resource_id}", read, methods=["GET"]),
    Route("/fhir/{resource_type}/{resource_id}", update, methods=["PUT"]),
    Route("/fhir/{resource_type}/{resource_id}", delete, methods=["DELETE"]),
    Route("/fhir/Patient/{resource_id}/$everything", everything, methods=["GET"]),
    Route("/fhir/{resource_type}/{resource_id}/_history", history, methods=["GET"]),
    Route("/fhir/{resource_type}/{resource_id}/_history/{version_id}", vread, methods=["GET"]),
]
for _route in ROUTES:  # the path template labels metrics and the access log (see observability)
    _route.endpoint.route_path = _route.path


class FhirLane:
    """ASGI middleware: serves the FHIR interactions in `routes`; everything else goes to `app`.

    Routes match as Starlette's router would (the first whose path and method match; a path that
    matches with another method is a 405). Paths whose first segment after /fhir/ starts with
    `$` or `.` belong to the FastAPI app (system operations, well-known documents). The same
    routes stand in the app's router behind the lane, so what the lane passes on (a trailing
    slash, redirected there) is answered as it always was.
    """

    def __init__(self, app, routes: list[Route] = ROUTES):
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = _route_path(scope)
        if not path.startswith("/fhir") or path[6:7] in ("$", "."):
            return await self.app(scope, receive, send)
        found = self._route_for(scope["method"], path)
        if found is None:
            return await self.app(scope, receive, send)
        endpoint, scope["path_params"] = found
        scope["endpoint"] = endpoint
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except GatewayError as error:
            response = outcome_response(error.status, error.operation_outcome(), getattr(error, "headers", None))
        await response(scope, receive, send)

    def _route_for(self, method: str, path: str):
        """(endpoint, path parameters); a 405-answering endpoint when only the method differs; None
        when no route has this path."""
        allowed: list[str] = []
        for route in self.routes:
            match = route.path_regex.match(path)
            if match is None:
                continue
            if method in route.methods:
                return route.endpoint, match.groupdict()
            allowed.extend(m for m in route.methods if m not in allowed)
        if not allowed:
            return None
        return _not_allowed(method, path, allowed), {}


def _route_path(scope) -> str:
    """The path below the app's root path (uvicorn's --root-path), as Starlette's router matches it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("/", ""):
        return path[len(root):]
    return path


def _not_allowed(method: str, path: str, allowed: list[str]):
    async def refuse(_request: Request) -> Response:
        refusal = MethodNotAllowed(f"{method} is not allowed on {path}")
        return outcome_response(405, refusal.operation_outcome(), {"Allow": ", ".join(allowed)})

    refuse.route_path = "unmatched"
    return refuse
