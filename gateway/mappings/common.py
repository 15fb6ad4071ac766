"""Small builders and readers shared by the mappings: codings, extensions, references, dates."""

from datetime import date, datetime
from typing import Any, TypeVar

from gateway.domain.vocabulary import CANONICAL_BASE, Coded

C = TypeVar("C", bound=Coded)


def extension_url(name: str) -> str:
    return f"{CANONICAL_BASE}/StructureDefinition/{name}"


def profile_url(name: str) -> str:
    return f"{CANONICAL_BASE}/StructureDefinition/{name}"


def coding(code: Coded) -> dict:
    return {"system": type(code).system(), "code": code.value, "display": code.display}


def concept(*codes: Coded, text: str | None = None) -> dict:
    found: dict[str, Any] = {"coding": [coding(c) for c in codes]}
    if text:
        found["text"] = text
    return found


def read_code(node: dict | None, vocabulary: type[C]) -> C | None:
    """The first coding of `vocabulary`'s system in a Coding or CodeableConcept."""
    if not node:
        return None
    codings = node.get("coding", [node]) if "coding" in node else [node]
    for c in codings:
        if c.get("system") == vocabulary.system():
            return vocabulary(c["code"])
    return None


def read_codes(nodes: list[dict] | None, vocabulary: type[C]) -> list[C]:
    return [code for node in nodes or () if (code := read_code(node, vocabulary)) is not None]


def ext(name: str, **value: Any) -> dict:
    """An extension: ext("jurisdiction", valueCoding=coding(Jurisdiction.VIC))."""
    return {"url": extension_url(name), **value}


def ext_values(resource: dict, name: str) -> list[Any]:
    url = extension_url(name)
    found = []
    for item in resource.get("extension", []):
        if item.get("url") == url:
            found.append(next(v for k, v in item.items() if k.startswith("value")))
    return found


def ext_value(resource: dict, name: str, default: Any = None) -> Any:
    values = ext_values(resource, name)
    return values[0] if values else default


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict:
    found = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        found["display"] = display
    return found


def reference_id(node: dict | None, resource_type: str) -> str | None:
    if not node or "reference" not in node:
        return None
    kind, _, rid = node["reference"].partition("/")
    if kind != resource_type:
        raise ValueError(f"expected a reference to {resource_type}, got {node['reference']}")
    return rid


def fhir_date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def parse_date(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def fhir_datetime(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def without_none(node: dict) -> dict:
    """Drop empty fields: FHIR forbids nulls and empty arrays or strings."""
    return {k: v for k, v in node.items() if v not in (None, [], "", {})}


def security_labels(*codes: Coded) -> dict:
    return {"security": [coding(c) for c in codes]}
