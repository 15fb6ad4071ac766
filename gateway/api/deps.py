"""Request inputs shared by the routes: the public FHIR base URL, bounded typed bodies, and the caller."""

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway.auth.caller import AccessDenied, Caller
from gateway.auth.policy import AccessPolicy
from gateway.auth.security_events import ACCESS_REFUSED, SecurityEvent
from gateway.errors import Forbidden, PayloadTooLarge, Unauthorized, UnsupportedMediaType


def fhir_base(request: Request) -> str:
    """The base for fullUrl, Location and paging links: GATEWAY_BASE_URL, or the request's own."""
    return f"{gateway_root(request)}/fhir"


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


# -- who is calling (gateway.auth) -------------------------------------------------------------


def gateway_root(request: Request) -> str:
    """The gateway's own URL (GATEWAY_BASE_URL, or the request's): its tokens' issuer and audience.

    Worked out once per request (building the request's base URL costs several microseconds,
    and both the token check and the FHIR links need it)."""
    root = request.scope.get("gateway.root")
    if root is None:
        configured = request.app.state.services.settings.base_url
        root = configured.rstrip("/") if configured else _request_root(request.scope)
        request.scope["gateway.root"] = root
    return root


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _request_root(scope) -> str:
    """`str(request.base_url)` without its trailing slash, as Starlette builds it (Host header, else
    the server address), without building URL objects: they cost as much as the rest of a read's routing."""
    scheme = scope.get("scheme", "http")
    root_path = scope.get("root_path", "").rstrip("/")
    for name, value in scope["headers"]:
        if name == b"host":
            return f"{scheme}://{value.decode('latin-1')}{root_path}"
    if scope.get("server") is None:
        return root_path
    host, port = scope["server"]
    return f"{scheme}://{host}{root_path}" if port == _DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}{root_path}"


async def require_caller(request: Request) -> Caller:
    """The verified Caller of this request, or 401 (recorded as a security event)."""
    access = request.app.state.services.identity.access
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        await _refused(request, "no-token", "no bearer access token", None)
        raise Unauthorized("This request needs an access token: Authorization: Bearer <token> (see /auth/token)")
    token, root = token.strip(), gateway_root(request)
    caller = access.cached(token, root)
    if caller is None:
        try:
            caller = await run_in_threadpool(access.verify, token, root)
        except AccessDenied as denied:
            await _refused(request, denied.reason, denied.message, None)
            raise Unauthorized(f"The access token is not accepted: {denied.message}", 'Bearer realm="gateway", error="invalid_token"') from None
    request.state.caller = caller
    return caller


def require_scope(scope: str):
    """A dependency: the Caller, if its token carries `scope` (one of the gateway's own: admin, audit)."""

    async def caller_with_scope(request: Request, caller: Caller = Depends(require_caller)) -> Caller:
        if not caller.scopes.has(scope):
            await _refused(request, "insufficient-scope", f"the token lacks the '{scope}' scope", caller)
            refusal = Forbidden(f"This needs the '{scope}' scope, which the access token does not carry")
            refusal.headers = {"WWW-Authenticate": f'Bearer realm="gateway", error="insufficient_scope", scope="{scope}"'}
            raise refusal
        return caller

    return caller_with_scope


def agency_access(resource_type: str, interaction: str):
    """A dependency: the caller's AccessPolicy, once its scopes allow `interaction` on `resource_type`.

    Hand the policy to the service (e.g. `CaseService.for_agency`) so that what the request reads
    and writes is limited to its agency's cases; every refusal, here or in the store, is recorded
    as a security event when the request ends.
    """

    async def policy_for_request(request: Request, caller: Caller = Depends(require_caller)):
        policy = AccessPolicy(caller)
        try:
            policy.require(resource_type, interaction)
            yield policy
        finally:
            await record_refusals(request, policy)

    return policy_for_request


async def caller_policy(request: Request) -> AccessPolicy:
    """For plain Starlette routes (FHIR): the verified caller's AccessPolicy (401 without a valid token)."""
    return AccessPolicy(await require_caller(request))


async def record_refusals(request: Request, policy: AccessPolicy) -> None:
    """Record what the policy and the store refused during the request, one security event each."""
    for refusal in policy.refusals:
        await _refused(request, refusal.reason, refusal.detail, policy.caller)
    policy.refusals.clear()


async def _refused(request: Request, reason: str, detail: str, caller: Caller | None) -> None:
    event = SecurityEvent(
        kind=ACCESS_REFUSED, reason=reason, detail=f"{request.method} {_route(request)}: {detail}",
        client_id=caller.client_id if caller else None, agency_id=caller.agency_id if caller else None,
        source=request.client.host if request.client else None,
    )
    await run_in_threadpool(request.app.state.services.identity.security_events.record, event)


def _route(request: Request) -> str:
    """The route template, never the path itself (paths and queries can name people)."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or getattr(request.scope.get("endpoint"), "route_path", None) or "(unrouted)"
