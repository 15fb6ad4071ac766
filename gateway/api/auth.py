"""SMART Backend Services endpoints: the token endpoint, its discovery document, the JWKS.

The token endpoint answers OAuth 2.0 JSON (RFC 6749 5.1 and 5.2), not OperationOutcomes: OAuth
clients read `error` and `error_description`.
"""

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import gateway_root
from gateway.auth.assertion import ASSERTION_ALGORITHMS
from gateway.auth.scopes import GATEWAY_SCOPES
from gateway.auth.token_endpoint import TOKEN_PATH, TokenResponse

router = APIRouter(tags=["authentication (SMART Backend Services)"])

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024  # an assertion is a few kilobytes
SMART_PATHS = ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration")


@router.post(TOKEN_PATH, summary="Exchange a signed client assertion for an access token (client_credentials)")
async def token(request: Request) -> Response:
    tokens = request.app.state.services.identity.tokens
    root, source = gateway_root(request), request.client.host if request.client else None
    form, problem = await _read_form(request)
    if problem:
        answer = await run_in_threadpool(tokens.refuse, problem, root, source)
    else:
        answer = await run_in_threadpool(tokens.issue, form, root, source)
    return _oauth_response(answer)


def _oauth_response(answer: TokenResponse) -> Response:
    return JSONResponse(answer.body, status_code=answer.status, headers=dict(answer.headers))


async def _read_form(request: Request) -> tuple[dict[str, str], str | None]:
    """The form's parameters, or why it cannot be read (RFC 6749: each parameter at most once)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return {}, f"The token request must be {FORM}"
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}, f"The token request is larger than {MAX_FORM_BYTES} bytes"
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return {}, "The token request is not a well-formed form"
    form = dict(pairs)
    if len(form) != len(pairs):
        return {}, "A parameter appears more than once in the token request"
    return form, None


@router.get(SMART_PATHS[0], summary="SMART configuration: how to get a token")
@router.get(SMART_PATHS[1], include_in_schema=False)
async def smart_configuration(request: Request) -> JSONResponse:
    root = gateway_root(request)
    return JSONResponse(
        {
            "issuer": root,
            "jwks_uri": f"{root}/.well-known/jwks.json",
            "token_endpoint": f"{root}{TOKEN_PATH}",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": ["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", *GATEWAY_SCOPES],
            "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/.well-known/jwks.json", summary="The public keys that verify the gateway's access tokens")
async def jwks(request: Request) -> JSONResponse:
    signing = request.app.state.services.identity.signing
    document = await run_in_threadpool(signing.jwks)
    # short: after a rotation, verifiers must see the new key before its first token reaches them
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})
