"""Request inputs shared by the routes: the public FHIR base URL and bounded, typed bodies."""

from starlette.requests import Request

from gateway.errors import PayloadTooLarge, UnsupportedMediaType


def fhir_base(request: Request) -> str:
    """The base for fullUrl, Location and paging links: GATEWAY_BASE_URL, or the request's own."""
    configured = request.app.state.services.settings.base_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return f"{root}/fhir"


def require_media_type(request: Request, allowed: tuple[str, ...]) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in allowed:
        raise UnsupportedMediaType.at("Content-Type", f"Content-Type must be {allowed[0]}, not {media_type or 'missing'}")


async def bounded_body(request: Request) -> bytes:
    """The body, refused early (413) when it is larger than GATEWAY_MAX_BODY_BYTES."""
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
