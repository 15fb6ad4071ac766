"""Registered agency systems (OAuth clients): whose they are, their public keys, their scopes.

A client belongs to one registered agency. It proves who it is with an assertion signed by one
of its keys, given as a JWKS (several keys, by kid, so it can rotate them) or as a URL that
serves one. Its scopes bound what any token it gets may carry. A revoked client keeps its row,
so that its id is never handed to another system.
"""

import json
import re
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from gateway.auth.agencies import AgencyRegistry
from gateway.auth.jwks import JwksError, check_jwks_url, parse_public_jwks
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.schema import oauth_clients

CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
AUTH_METHOD = "private_key_jwt"
GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class RegisteredClient:
    """One agency system, as authlib's ClientMixin expects it (the methods it calls are here)."""

    client_id: str
    agency_id: str
    scopes: ScopeSet
    jwks: dict | None
    jwks_url: str | None
    created_at: int
    updated_at: int
    revoked_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def key_ids(self) -> list[str]:
        return [k["kid"] for k in self.jwks["keys"]] if self.jwks else []

    # -- authlib ClientMixin --------------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope: str) -> str:
        return ScopeSet.parse(scope).granted_from(self.scopes).text


class ClientRegistry:
    def __init__(self, db: Database, agencies: AgencyRegistry):
        self.db = db
        self.agencies = agencies

    def add(self, client_id: str, agency_id: str, scopes: str, jwks: dict | str | None = None, jwks_url: str | None = None) -> tuple[RegisteredClient, bool]:
        """Register a client, or update the keys and scopes of one; True when it is new."""
        row = self._checked_row(client_id, agency_id, scopes, jwks, jwks_url)
        return self.db.run_write(lambda conn: self._upsert(conn, row))

    def _checked_row(self, client_id, agency_id, scopes, jwks, jwks_url) -> dict:
        if not CLIENT_ID.match(client_id or ""):
            raise InvalidRequest.at("client_id", f"'{client_id}' is not a valid client id (letters, digits, . _ : -, at most 128)")
        if (jwks is None) == (jwks_url is None):
            raise InvalidRequest.at("jwks", "give the client's public keys as a JWKS or as a JWKS URL, one of the two")
        try:
            parsed = ScopeSet.parse(scopes)
            document = parse_public_jwks(jwks).as_dict(private=False) if jwks is not None else None
            url = check_jwks_url(jwks_url) if jwks_url is not None else None
        except ScopeError as exc:
            raise InvalidRequest.at("scopes", str(exc)) from None
        except JwksError as exc:
            raise InvalidRequest.at("jwks" if jwks is not None else "jwks_url", str(exc)) from None
        if not parsed:
            raise InvalidRequest.at("scopes", "the client needs at least one scope")
        if self.agencies.find(agency_id) is None:
            raise NotFound(f"agency {agency_id} is not registered; add it first (gateway agency add)")
        return {
            "client_id": client_id, "agency_id": agency_id, "scopes": parsed.text,
            "jwks": json.dumps(document) if document else None, "jwks_url": url,
        }

    def _upsert(self, conn: Connection, row: dict) -> tuple[RegisteredClient, bool]:
        self.db.advisory_lock(conn, f"client:{row['client_id']}")
        current = self.get(conn, row["client_id"])
        now = now_micros()
        if current is None:
            conn.execute(insert(oauth_clients).values(**row, created_at=now, updated_at=now))
        elif current.revoked:
            raise Conflict(f"client {row['client_id']} was revoked; register the system under a new client id")
        elif current.agency_id != row["agency_id"]:
            raise Conflict(f"client {row['client_id']} belongs to agency {current.agency_id}, not {row['agency_id']}")
        else:
            conn.execute(update(oauth_clients).where(oauth_clients.c.client_id == row["client_id"]).values(**row, updated_at=now))
        return self.get(conn, row["client_id"]), current is None

    def get(self, conn: Connection, client_id: str) -> RegisteredClient | None:
        row = conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id)).first()
        return _client(row) if row else None

    def find(self, client_id: str) -> RegisteredClient | None:
        return self.db.run_read(lambda conn: self.get(conn, client_id))

    def all(self) -> list[RegisteredClient]:
        rows = self.db.run_read(lambda conn: conn.execute(select(oauth_clients).order_by(oauth_clients.c.client_id)).all())
        return [_client(r) for r in rows]

    def revoke(self, client_id: str) -> RegisteredClient:
        def job(conn: Connection) -> RegisteredClient:
            current = self.get(conn, client_id)
            if current is None:
                raise NotFound(f"client {client_id} is not registered")
            if not current.revoked:
                conn.execute(update(oauth_clients).where(oauth_clients.c.client_id == client_id).values(revoked_at=now_micros()))
            return self.get(conn, client_id)

        return self.db.run_write(job)

    def revoked_ids(self) -> frozenset[str]:
        return frozenset(
            self.db.run_read(
                lambda conn: conn.execute(select(oauth_clients.c.client_id).where(oauth_clients.c.revoked_at.is_not(None))).scalars().all()
            )
        )


def _client(row) -> RegisteredClient:
    return RegisteredClient(
        client_id=row.client_id,
        agency_id=row.agency_id,
        scopes=ScopeSet.parse(row.scopes),
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_url=row.jwks_url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
    )
