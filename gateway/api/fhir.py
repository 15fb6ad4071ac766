"""FHIR R4B REST interactions. Each route parses, calls one service function, and returns."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from gateway.api.deps import Base, Body, Form, Service
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
async def metadata(request: Request, base: Base) -> Response:
    return Response(capability_statement(base, request.app.version), media_type=FHIR_JSON)


@router.post("", summary="Process a transaction or batch Bundle")
async def bundle(service: Service, base: Base, body: Body) -> Response:
    return fhir_response(await process_bundle(service, body, base))


@router.get("/{resource_type}", summary="Search")
async def search(resource_type: str, request: Request, service: Service, base: Base) -> Response:
    return fhir_response(await service.search(resource_type, _params(request), base))


@router.post("/{resource_type}/_search", summary="Search with form-encoded parameters")
async def search_post(resource_type: str, request: Request, service: Service, base: Base, form: Form) -> Response:
    return fhir_response(await service.search(resource_type, _params(request) + form, base))


@router.get("/{resource_type}/_history", summary="History of every resource of a type")
async def type_history(resource_type: str, request: Request, service: Service, base: Base) -> Response:
    return fhir_response(await service.history(resource_type, None, _params(request), base))


@router.post("/{resource_type}", summary="Create (conditional with If-None-Exist)")
async def create(
    resource_type: str, service: Service, base: Base, body: Body,
    if_none_exist: OptionalHeader = None, prefer: OptionalHeader = None,
) -> Response:
    return fhir_response(await service.create(resource_type, body, base, if_none_exist), prefer)


@router.get("/{resource_type}/{resource_id}", summary="Read")
async def read(resource_type: str, resource_id: str, service: Service, base: Base) -> Response:
    return fhir_response(await service.read(resource_type, resource_id, base))


@router.put("/{resource_type}/{resource_id}", summary="Update (version-aware with If-Match)")
async def update(
    resource_type: str, resource_id: str, service: Service, base: Base, body: Body,
    if_match: OptionalHeader = None, prefer: OptionalHeader = None,
) -> Response:
    return fhir_response(await service.update(resource_type, resource_id, body, base, if_match), prefer)


@router.delete("/{resource_type}/{resource_id}", summary="Delete (history is kept)")
async def delete(resource_type: str, resource_id: str, service: Service) -> Response:
    return fhir_response(await service.delete(resource_type, resource_id))


@router.get("/{resource_type}/{resource_id}/_history", summary="History of one resource")
async def history(resource_type: str, resource_id: str, request: Request, service: Service, base: Base) -> Response:
    return fhir_response(await service.history(resource_type, resource_id, _params(request), base))


@router.get("/{resource_type}/{resource_id}/_history/{version_id}", summary="Read one version (vread)")
async def vread(resource_type: str, resource_id: str, version_id: str, service: Service, base: Base) -> Response:
    return fhir_response(await service.vread(resource_type, resource_id, version_id, base))
