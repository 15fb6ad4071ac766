"""An agency's backend system as SMART Backend Services sees it: key pairs, assertions, tokens."""

import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import AgencyType, Jurisdiction, PrescribedStatus

FORM = {"content-type": "application/x-www-form-urlencoded"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
VICPOL = Agency(
    "vicpol", "Victoria Police", AgencyType.POLICE, Jurisdiction.VIC,
    frozenset({PrescribedStatus.INFORMATION_SHARING_ENTITY, PrescribedStatus.RISK_ASSESSMENT_ENTITY}),
)


def new_key(alg: str, kid: str):
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
    curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    return ECKey.generate_key(curve, parameters={"kid": kid}, private=True)


class AgencySystem:
    def __init__(self, client_id: str, alg: str = "RS384", kid: str | None = None):
        self.client_id = client_id
        self.alg = alg
        self.key = new_key(alg, kid or f"{client_id}-1")
        self.keys = [self.key]

    @property
    def jwks(self) -> dict:
        return KeySet(self.keys).as_dict(private=False)

    def add_key(self, alg: str, kid: str):
        """Key rotation on the agency's side: a second key beside the first."""
        self.alg, self.key = alg, new_key(alg, kid)
        self.keys.append(self.key)
        return self.key

    def assertion(self, token_url: str, header: dict | None = None, key=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": token_url, "exp": now + 240, "jti": uuid.uuid4().hex}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signer = key or self.key
        head = {"alg": self.alg, "kid": signer.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(head, body, signer, algorithms=[head["alg"]])

    def token_form(self, token_url: str, scope: str, assertion: str | None = None) -> dict:
        return {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(token_url),
        }


def register_system(services, client_id: str = "vicpol-lead", scopes: str = "system/*.cruds admin", alg: str = "RS384", agency: Agency = VICPOL) -> AgencySystem:
    services.identity.agencies.add(agency)
    system = AgencySystem(client_id, alg)
    services.identity.clients.add(client_id, agency.id, scopes, jwks=system.jwks)
    return system


def token_url(client) -> str:
    return f"{client.base_url}/auth/token".replace("//auth", "/auth")


def get_token(client, system: AgencySystem, scope: str = "system/*.cruds admin") -> str:
    answer = client.post("/auth/token", data=system.token_form(token_url(client), scope), headers=FORM)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


TEST_SCOPES = "system/*.cruds admin audit"


def agency_token(services, client, agency_id: str = "dfv-logan", scopes: str = TEST_SCOPES) -> str:
    """A token of a test system of `agency_id` (one of the worked case's agencies, registered here)."""
    from gateway.demo import scenario

    services.identity.agencies.add(next(a for a in scenario.AGENCIES if a.id == agency_id))
    system = AgencySystem(f"test-{agency_id}", "ES256")  # EC keys: generated in microseconds
    services.identity.clients.add(system.client_id, agency_id, scopes, jwks=system.jwks)
    return get_token(client, system, scopes)



def system_on_the_command_line(env: dict, directory, agency_id: str, client_id: str, scopes: str) -> AgencySystem:
    """Register a system of an already registered agency with `gateway client add`, as an operator does."""
    import json

    from tests.support.server import run_gateway

    system = AgencySystem(client_id, "ES256")
    jwks = directory / f"{client_id}.jwks"
    jwks.write_text(json.dumps(system.jwks))
    result = run_gateway(["client", "add", "--agency", agency_id, "--client-id", client_id, "--jwks", str(jwks), "--scopes", scopes], env)
    assert result.returncode == 0, result.stderr
    return system


def server_token(base_url: str, system: AgencySystem, scope: str) -> dict:
    """Bearer headers with a token from a running gateway's /auth/token."""
    import httpx2 as httpx

    url = f"{base_url}/auth/token"
    answer = httpx.post(url, data=system.token_form(url, scope), headers=FORM)
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])
