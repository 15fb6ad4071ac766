"""Transaction (all or nothing) and batch (each entry on its own) Bundles, POSTed to /fhir.

A transaction runs every entry in one database transaction, in the order FHIR prescribes
(DELETE, POST, PUT, GET), after giving each `urn:uuid:` fullUrl its server id and rewriting the
references that point at it. The first failing entry aborts the whole Bundle and the error names
the entry (`Bundle.entry[3].resource.status`).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.errors import BusinessRuleViolation, GatewayError, InvalidRequest, Issue
from gateway.fhir import bundles
from gateway.fhir.ids import new_id
from gateway.fhir.search import parse_search
from gateway.fhir.service import FhirResponse, FhirService, parse_etag
from gateway.fhir.validation import parse_json, require_supported_type

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}


@dataclass
class Entry:
    index: int
    method: str
    resource_type: str
    resource_id: str | None
    query: list[tuple[str, str]] | None  # GET searches
    resource: dict | None
    full_url: str | None
    if_match: str | None
    if_none_exist: str | None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


async def process_bundle(service: FhirService, body: bytes, base: str) -> FhirResponse:
    bundle = parse_json(body)
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRequest.at("resourceType", "POST to the server base takes a transaction or batch Bundle")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise BusinessRuleViolation.at("Bundle.type", f"Bundle.type must be 'transaction' or 'batch', not {kind!r}")
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidRequest.at("Bundle.entry", "Bundle.entry must be a list")
    async with service.recorded(kind):  # what its reads released or withheld, recorded before it answers
        if kind == "batch":
            return await _batch(service, raw_entries, base)
        entries = [_parse_entry(service, i, e) for i, e in enumerate(raw_entries)]
        return await _transaction(service, entries, base)


async def _transaction(service: FhirService, entries: list[Entry], base: str) -> FhirResponse:
    _assign_ids(entries)

    def run_all(conn) -> dict[int, FhirResponse]:
        results = {}
        for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
            try:
                results[entry.index] = _run(service, conn, entry, base)
            except GatewayError as exc:
                raise _at_entry(exc, entry) from None
        return results

    results = await service.db.write(run_all)
    response = bundles.response_bundle("transaction-response", [_response_part(results[e.index]) for e in entries])
    return FhirResponse(200, response)


async def _batch(service: FhirService, raw_entries: list, base: str) -> FhirResponse:
    parts = []
    for i, raw in enumerate(raw_entries):
        try:
            entry = _parse_entry(service, i, raw)
            run = service.db.read if entry.method == "GET" else service.db.write
            result = await run(lambda conn, entry=entry: _run(service, conn, entry, base))
            parts.append(_response_part(result))
        except GatewayError as exc:  # a batch entry fails alone; the others stand
            parts.append(({"status": str(exc.status), "outcome": exc.operation_outcome()}, None))
    return FhirResponse(200, bundles.response_bundle("batch-response", parts))


def _parse_entry(service: FhirService, index: int, raw: Any) -> Entry:
    path = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise InvalidRequest.at(f"{path}.request", "Each entry needs a request with method and url")
    method = str(raw["request"].get("method", "")).upper()
    if method not in _ORDER:
        raise InvalidRequest.at(f"{path}.request.method", f"Method {method!r} is not supported in a Bundle entry")
    url = urlsplit(str(raw["request"].get("url", "")))
    parts = [p for p in url.path.split("/") if p]
    if not parts:
        raise InvalidRequest.at(f"{path}.request.url", "request.url must name a resource type")
    resource_type, resource_id = parts[0], parts[1] if len(parts) > 1 else None
    require_supported_type(resource_type)
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise InvalidRequest.at(f"{path}.resource", f"A {method} entry needs a resource")
        service.accept(resource, resource_type, path=f"{path}.resource")
    if method in ("PUT", "DELETE") and resource_id is None:
        raise InvalidRequest.at(f"{path}.request.url", f"A {method} entry's url must be Type/id (conditional forms are not supported)")
    query = parse_qsl(url.query, keep_blank_values=True) if method == "GET" and resource_id is None else None
    return Entry(
        index,
        method,
        resource_type,
        resource_id,
        query,
        resource,
        raw.get("fullUrl"),
        raw["request"].get("ifMatch"),
        raw["request"].get("ifNoneExist"),
    )


def _assign_ids(entries: list[Entry]) -> None:
    """Give each new resource its id now, so references between entries can be rewritten."""
    mapping = {}
    for entry in entries:
        if entry.method == "POST":
            entry.resource_id = new_id()
        if entry.full_url and entry.method in ("POST", "PUT"):
            mapping[entry.full_url] = f"{entry.resource_type}/{entry.resource_id}"
    if mapping:
        for entry in entries:
            if entry.resource is not None:
                _rewrite_references(entry.resource, mapping)


def _rewrite_references(node: Any, mapping: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            _rewrite_references(value, mapping)
    elif isinstance(node, list):
        for value in node:
            _rewrite_references(value, mapping)


def _run(service: FhirService, conn, entry: Entry, base: str) -> FhirResponse:
    if entry.method == "POST":
        return service.create_in(conn, entry.resource, base, entry.if_none_exist, entry.resource_id)
    if entry.method == "PUT":
        return service.update_in(conn, entry.resource_id, entry.resource, base, parse_etag(entry.if_match))
    if entry.method == "DELETE":
        return service.delete_in(conn, entry.resource_type, entry.resource_id)
    if entry.resource_id is not None:
        return service.read_in(conn, entry.resource_type, entry.resource_id, base)
    query = parse_search(entry.resource_type, entry.query)
    return service.search_in(conn, query, entry.query, base)


def _response_part(result: FhirResponse) -> tuple[dict, bytes | None]:
    response = {"status": str(result.status)}
    for header, element in (("Location", "location"), ("ETag", "etag"), ("Last-Modified", "lastModified")):
        if header in result.headers:
            response[element] = result.headers[header]
    return response, result.body


def _at_entry(exc: GatewayError, entry: Entry | None) -> GatewayError:
    """The same error, its paths prefixed with the entry it came from."""
    if entry is None:
        return exc
    prefix = entry.path
    issues = [
        Issue(i.diagnostics, tuple(p if p.startswith("Bundle.") else f"{prefix}.{p}" for p in i.expression) or (prefix,), i.code)
        for i in exc.issues
    ]
    return type(exc)(f"{prefix}: {exc.message}", issues)
