"""Build response Bundles by splicing stored JSON bytes into an envelope.

Serialising each resource through a model would cost more than everything else on the read
path (DESIGN.md section 9); the stored bytes already are the resource's JSON.
"""

import orjson

from gateway.fhir import dates
from gateway.fhir.withheld import WithheldRecord, withheld_outcome
from gateway.store.resources import StoredVersion


def resource_url(base: str, resource_type: str, resource_id: str) -> str:
    return f"{base}/{resource_type}/{resource_id}"


def searchset(
    base: str, found: list[StoredVersion], total: int | None, links: dict[str, str], withheld: list[WithheldRecord] = ()
) -> bytes:
    entries = [
        _entry(resource_url(base, v.resource_type, v.resource_id), v.body, b'"search":{"mode":"match"}') for v in found
    ]
    if withheld:  # one outcome entry says what was left out and why (gateway.fhir.withheld)
        entries.append(b'{"resource":' + orjson.dumps(withheld_outcome(list(withheld))) + b',"search":{"mode":"outcome"}}')
    return _envelope("searchset", total, links, entries)


def history(
    base: str, versions: list[StoredVersion], total: int, links: dict[str, str], withheld: list[WithheldRecord] = ()
) -> bytes:
    entries = []
    for v in versions:
        url = resource_url(base, v.resource_type, v.resource_id)
        method = "DELETE" if v.deleted else v.method
        target = v.resource_type if method == "POST" else f"{v.resource_type}/{v.resource_id}"
        request = {"method": method, "url": target}
        response = {
            "status": "204" if v.deleted else ("201" if v.version_id == 1 else "200"),
            "etag": v.etag,
            "lastModified": dates.instant_text(v.last_updated),
        }
        tail = b'"request":' + orjson.dumps(request) + b',"response":' + orjson.dumps(response)
        entries.append(_entry(url, v.body, tail))
    for w in withheld:  # no resource: a 403 response whose outcome says why
        request = {"method": "GET", "url": f"{w.resource_type}/{w.resource_id}/_history/{w.version_id}"}
        response = {"status": "403", "outcome": withheld_outcome([w])}
        tail = b'"request":' + orjson.dumps(request) + b',"response":' + orjson.dumps(response)
        entries.append(_entry(resource_url(base, w.resource_type, w.resource_id), None, tail))
    return _envelope("history", total, links, entries)


def response_bundle(bundle_type: str, entries: list[tuple[dict, bytes | None]]) -> bytes:
    """transaction-response / batch-response: (response element, resource bytes or None) per entry."""
    parts = []
    for response, body in entries:
        tail = b'"response":' + orjson.dumps(response)
        parts.append(b"{" + (b'"resource":' + body + b"," if body else b"") + tail + b"}")
    return _envelope(bundle_type, None, {}, parts)


def _entry(full_url: str, body: bytes | None, tail: bytes) -> bytes:
    resource = b'"resource":' + body + b"," if body is not None else b""
    return b'{"fullUrl":' + orjson.dumps(full_url) + b"," + resource + tail + b"}"


def _envelope(bundle_type: str, total: int | None, links: dict[str, str], entries: list[bytes]) -> bytes:
    head: dict = {"resourceType": "Bundle", "type": bundle_type}
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": rel, "url": url} for rel, url in links.items()]
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
