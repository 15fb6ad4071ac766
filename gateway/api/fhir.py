"""FHIR R4B REST interactions. Each route parses, calls one service function, and returns.

These are plain Starlette routes in the FastAPI app, not FastAPI path operations: FHIR bodies
are FHIR JSON validated by fhir.resources, the API is described by /fhir/metadata (not OpenAPI),
and FastAPI's dependency and schema machinery cost about as much as serving a stored resource.
Errors raised here reach the same exception handlers as every other route.
"""

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.deps import bounded_body, fhir_base, require_media_type
from gateway.api.errors import FHIR_JSON
from gateway.fhir.capability import capability_statement
from gateway.fhir.service import FhirResponse, FhirService
from gateway.fhir.transactions import process_bundle

_JSON_TYPES = ("application/fhir+json", "application/json")
_FORM = ("application/x-www-form-urlencoded",)


def fhir_response(result: FhirResponse, prefer: str | None = None) -> Response:
    body = None if prefer and "return=minimal" in prefer else result.body
    return Response(body, status_code=result.status, headers=result.headers, media_type=FHIR_JSON)


def _service(request: Request) -> FhirService:
    return request.app.state.services.fhir


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


async def _json_body(request: Request) -> bytes:
    require_media_type(request, _JSON_TYPES)
    return await bounded_body(request)


async def metadata(request: Request) -> Response:
    profiles = _service(request).profiles
    body = capability_statement(fhir_base(request), request.app.version, profiles.supported if profiles else None)
    return Response(body, media_type=FHIR_JSON)


async def bundle(request: Request) -> Response:
    return fhir_response(await process_bundle(_service(request), await _json_body(request), fhir_base(request)))


async def search(request: Request) -> Response:
    kind = request.path_params["resource_type"]
    return fhir_response(await _service(request).search(kind, _params(request), fhir_base(request)))


async def search_post(request: Request) -> Response:
    require_media_type(request, _FORM)
    form = parse_qsl((await bounded_body(request)).decode("utf-8", "replace"), keep_blank_values=True)
    kind = request.path_params["resource_type"]
    return fhir_response(await _service(request).search(kind, _params(request) + form, fhir_base(request)))


async def type_history(request: Request) -> Response:
    kind = request.path_params["resource_type"]
    return fhir_response(await _service(request).history(kind, None, _params(request), fhir_base(request)))


async def create(request: Request) -> Response:
    kind, body = request.path_params["resource_type"], await _json_body(request)
    result = await _service(request).create(kind, body, fhir_base(request), request.headers.get("if-none-exist"))
    return fhir_response(result, request.headers.get("prefer"))


async def read(request: Request) -> Response:
    p = request.path_params
    return fhir_response(await _service(request).read(p["resource_type"], p["resource_id"], fhir_base(request)))


async def update(request: Request) -> Response:
    p, body = request.path_params, await _json_body(request)
    result = await _service(request).update(
        p["resource_type"], p["resource_id"], body, fhir_base(request), request.headers.get("if-match")
    )
    return fhir_response(result, request.headers.get("prefer"))


async def delete(request: Request) -> Response:
    p = request.path_params
    return fhir_response(await _service(request).delete(p["resource_type"], p["resource_id"]))


async def history(request: Request) -> Response:
    p = request.path_params
    result = await _service(request).history(p["resource_type"], p["resource_id"], _params(request), fhir_base(request))
    return fhir_response(result)


async def vread(request: Request) -> Response:
    p = request.path_params
    result = await _service(request).vread(p["resource_type"], p["resource_id"], p["version_id"], fhir_base(request))
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
    Route("/fhir/{resource_type}/{resource_id}/_history", history, methods=["GET"]),
    Route("/fhir/{resource_type}/{resource_id}/_history/{version_id}", vread, methods=["GET"]),
]
for _route in routes:  # the path template labels metrics and the access log (see observability)
    _route.endpoint.route_path = _route.path
