"""FHIR R4B REST interactions. Each route parses, calls one service function, and returns.

These are plain Starlette routes in the FastAPI app, not FastAPI path operations: FHIR bodies
are FHIR JSON validated by fhir.resources, the API is described by /fhir/metadata (not OpenAPI),
and FastAPI's dependency and schema machinery cost about as much as serving a stored resource.
Errors raised here reach the same exception handlers as every other route.

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
from gateway.api.errors import FHIR_JSON
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
routes = [
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
for _route in routes:  # the path template labels metrics and the access log (see observability)
    _route.endpoint.route_path = _route.path
