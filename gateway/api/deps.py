"""Request-scoped inputs shared by the routers: services, base URL, FHIR request bodies.

All are `async def`: FastAPI runs a plain `def` dependency on its thread pool, a hop that costs
more than the dependency itself.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from gateway.errors import PayloadTooLarge, UnsupportedMediaType
from gateway.fhir.service import FhirService

_JSON_TYPES = ("application/fhir+json", "application/json")
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class FhirContext:
    """What a FHIR route needs: the service, and the base URL for fullUrl, Location and links.

    One dependency rather than two: each dependency FastAPI resolves costs tens of microseconds,
    a noticeable share of a read that otherwise serves stored bytes.
    """

    service: FhirService
    base: str


async def fhir_context(request: Request) -> FhirContext:
    services = request.app.state.services
    configured = services.settings.base_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return FhirContext(services.fhir, f"{root}/fhir")


async def fhir_body(request: Request) -> bytes:
    """The body of a FHIR write, refused early if it is too large or not JSON."""
    _require_media_type(request, _JSON_TYPES)
    return await _bounded_body(request)


async def search_form(request: Request) -> list[tuple[str, str]]:
    """Parameters of POST [type]/_search, which FHIR sends form-encoded."""
    _require_media_type(request, (_FORM,))
    return parse_qsl((await _bounded_body(request)).decode("utf-8", "replace"), keep_blank_values=True)


def _require_media_type(request: Request, allowed: tuple[str, ...]) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in allowed:
        raise UnsupportedMediaType.at("Content-Type", f"Content-Type must be {allowed[0]}, not {media_type or 'missing'}")


async def _bounded_body(request: Request) -> bytes:
    limit = request.app.state.services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Fhir = Annotated[FhirContext, Depends(fhir_context)]
Body = Annotated[bytes, Depends(fhir_body)]
Form = Annotated[list[tuple[str, str]], Depends(search_form)]
