"""FHIR R4B REST interactions. Each route parses, calls one service function, and returns."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from gateway.api.deps import Body, Fhir, Form
from gateway.api.errors import FHIR_JSON
from gateway.fhir.capability import capability_statement
from gateway.fhir.service import FhirResponse
from gateway.fhir.transactions import process_bundle

router = APIRouter(prefix="/fhir", tags=["FHIR R4B"])
OptionalHeader = Annotated[str | None, Header()]


def fhir_response(result: FhirResponse, prefer: str | None = None) -> Response:
    body = None if prefer and "return=minimal" in prefer else result.body
    return Response(body, status_code=result.status, headers=result.headers, media_type=FHIR_JSON)


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


@router.get("/metadata", summary="CapabilityStatement: exactly what this server supports")
async def metadata(request: Request, fhir: Fhir) -> Response:
    profiles = fhir.service.profiles.supported if fhir.service.profiles else None
    return Response(capability_statement(fhir.base, request.app.version, profiles), media_type=FHIR_JSON)


@router.post("", summary="Process a transaction or batch Bundle")
async def bundle(fhir: Fhir, body: Body) -> Response:
    return fhir_response(await process_bundle(fhir.service, body, fhir.base))


@router.get("/{resource_type}", summary="Search")
async def search(resource_type: str, request: Request, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.search(resource_type, _params(request), fhir.base))


@router.post("/{resource_type}/_search", summary="Search with form-encoded parameters")
async def search_post(resource_type: str, request: Request, fhir: Fhir, form: Form) -> Response:
    return fhir_response(await fhir.service.search(resource_type, _params(request) + form, fhir.base))


@router.get("/{resource_type}/_history", summary="History of every resource of a type")
async def type_history(resource_type: str, request: Request, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.history(resource_type, None, _params(request), fhir.base))


@router.post("/{resource_type}", summary="Create (conditional with If-None-Exist)")
async def create(
    resource_type: str, fhir: Fhir, body: Body,
    if_none_exist: OptionalHeader = None, prefer: OptionalHeader = None,
) -> Response:
    return fhir_response(await fhir.service.create(resource_type, body, fhir.base, if_none_exist), prefer)


@router.get("/{resource_type}/{resource_id}", summary="Read")
async def read(resource_type: str, resource_id: str, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.read(resource_type, resource_id, fhir.base))


@router.put("/{resource_type}/{resource_id}", summary="Update (version-aware with If-Match)")
async def update(
    resource_type: str, resource_id: str, fhir: Fhir, body: Body,
    if_match: OptionalHeader = None, prefer: OptionalHeader = None,
) -> Response:
    return fhir_response(await fhir.service.update(resource_type, resource_id, body, fhir.base, if_match), prefer)


@router.delete("/{resource_type}/{resource_id}", summary="Delete (history is kept)")
async def delete(resource_type: str, resource_id: str, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.delete(resource_type, resource_id))


@router.get("/{resource_type}/{resource_id}/_history", summary="History of one resource")
async def history(resource_type: str, resource_id: str, request: Request, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.history(resource_type, resource_id, _params(request), fhir.base))


@router.get("/{resource_type}/{resource_id}/_history/{version_id}", summary="Read one version (vread)")
async def vread(resource_type: str, resource_id: str, version_id: str, fhir: Fhir) -> Response:
    return fhir_response(await fhir.service.vread(resource_type, resource_id, version_id, fhir.base))
