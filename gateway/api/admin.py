"""The admin API: the registry of agencies and their systems, signing keys, security events.

Everything here needs an access token with the `admin` scope, which no case scope implies. The
same operations are on the command line (`gateway agency|client|keys rotate-signing`), which is
how the first admin client is registered.
"""

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import require_scope
from gateway.auth.clients import RegisteredClient
from gateway.auth.scopes import ADMIN
from gateway.auth.security_events import SecurityEvent
from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import AgencyType, Jurisdiction, PrescribedStatus

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_scope(ADMIN))])


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="the agency's id (also its Organization id)", examples=["vicpol"])
    name: str
    type: AgencyType
    jurisdiction: Jurisdiction
    prescribed: list[PrescribedStatus] = Field(default_factory=list, description="statuses under the jurisdiction's scheme")

    def to_domain(self) -> Agency:
        return Agency(self.id, self.name, self.type, self.jurisdiction, frozenset(self.prescribed))


class AgencyOut(AgencyIn):
    fhir: str

    @classmethod
    def of(cls, agency: Agency) -> "AgencyOut":
        return cls(
            id=agency.id, name=agency.name, type=agency.type, jurisdiction=agency.jurisdiction,
            prescribed=sorted(agency.prescribed), fhir=f"Organization/{agency.id}",
        )


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str
    agency: str = Field(description="id of a registered agency")
    scopes: str = Field(description="space-separated", examples=["system/Task.rs system/Patient.r"])
    jwks: dict | None = Field(default=None, description="the client's public keys (JWKS); or jwks_url")
    jwks_url: str | None = None


class ClientOut(BaseModel):
    client_id: str
    agency: str
    scopes: str
    key_ids: list[str]
    jwks_url: str | None
    revoked: bool

    @classmethod
    def of(cls, client: RegisteredClient) -> "ClientOut":
        return cls(
            client_id=client.client_id, agency=client.agency_id, scopes=client.scopes.text, key_ids=client.key_ids,
            jwks_url=client.jwks_url, revoked=client.revoked,
        )


class SecurityEventOut(BaseModel):
    occurred_at: int = Field(description="UTC microseconds since the epoch")
    kind: str
    reason: str
    detail: str
    client_id: str | None
    agency_id: str | None
    source: str | None

    @classmethod
    def of(cls, event: SecurityEvent) -> "SecurityEventOut":
        return cls(**{name: getattr(event, name) for name in cls.model_fields})


def _identity(request: Request):
    return request.app.state.services.identity


@router.get("/agencies", response_model=list[AgencyOut], summary="Registered agencies")
async def list_agencies(request: Request) -> list[AgencyOut]:
    return [AgencyOut.of(a) for a in await run_in_threadpool(_identity(request).agencies.all)]


@router.post("/agencies", response_model=AgencyOut, summary="Register an agency, or update it")
async def add_agency(body: AgencyIn, request: Request) -> JSONResponse:
    created = await run_in_threadpool(_identity(request).agencies.add, body.to_domain())
    return JSONResponse(AgencyOut.of(body.to_domain()).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/clients", response_model=list[ClientOut], summary="Registered agency systems")
async def list_clients(request: Request) -> list[ClientOut]:
    return [ClientOut.of(c) for c in await run_in_threadpool(_identity(request).clients.all)]


@router.post("/clients", response_model=ClientOut, summary="Register an agency system, or replace its keys and scopes")
async def add_client(body: ClientIn, request: Request) -> JSONResponse:
    client, created = await run_in_threadpool(
        _identity(request).clients.add, body.client_id, body.agency, body.scopes, body.jwks, body.jwks_url
    )
    return JSONResponse(ClientOut.of(client).model_dump(), status_code=201 if created else 200)


@router.post("/clients/{client_id}/revoke", response_model=ClientOut, summary="Revoke a client: no new tokens, and its tokens stop working")
async def revoke_client(client_id: str, request: Request) -> ClientOut:
    return ClientOut.of(await run_in_threadpool(_identity(request).clients.revoke, client_id))


@router.post("/signing-keys/rotate", summary="Sign new tokens with a new key; tokens already issued stay valid")
async def rotate_signing_key(request: Request) -> dict:
    result = await run_in_threadpool(_identity(request).signing.rotate)
    return {"kid": result.new_kid, "retired": result.retired, "deleted": result.deleted}


@router.get("/security-events", response_model=list[SecurityEventOut], summary="Recent refused token requests and access attempts")
async def security_events(request: Request, limit: int = Query(100, ge=1, le=1000)) -> list[SecurityEventOut]:
    return [SecurityEventOut.of(e) for e in await run_in_threadpool(_identity(request).security_events.recent, limit)]
