"""Security events: refused token requests and refused access, recorded without secrets.

Why not the disclosure ledger (gateway.audit.ledger)? The ledger records what was released or
withheld about people, for privacy officers; it is one hash chain that every release appends
to under a lock. A refused token request discloses nothing about anyone, and anyone on the
network can cause one: written to the chain, a flood of bad assertions would slow every
release and bury the disclosures a privacy officer must find. So refusals go to their own
table (and to the log, as one structured line), where security operations read them
(`GET /admin/security-events`). Neither ever holds an assertion or a token: only what was
refused, why (a short reason code and a sentence), the client it claimed to be, and where the
request came from.
"""

import logging
import re
from dataclasses import dataclass

from sqlalchemy import insert, select

from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.schema import security_events

log = logging.getLogger("gateway.security")
_PRINTABLE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_DETAIL = 300

TOKEN_REFUSED = "token-refused"  # /auth/token answered an OAuth error
ACCESS_REFUSED = "access-refused"  # a request's access token was missing, invalid or lacked a scope


def claimed_id(value: object) -> str | None:
    """An id an unauthenticated caller claimed, if it looks like one (never arbitrary text)."""
    return value if isinstance(value, str) and _PRINTABLE_ID.match(value) else None


def _printable(text: str) -> str:
    """No line breaks or control characters from a caller's input: one event, one log line."""
    return "".join(c if c.isprintable() else "?" for c in text)


@dataclass(frozen=True)
class SecurityEvent:
    kind: str
    reason: str
    detail: str
    client_id: str | None = None
    agency_id: str | None = None
    source: str | None = None
    occurred_at: int = 0  # UTC microseconds; set when recorded


class SecurityEvents:
    def __init__(self, db: Database):
        self.db = db

    def record(self, event: SecurityEvent) -> None:
        row = {
            "occurred_at": event.occurred_at or now_micros(),
            "kind": event.kind,
            "reason": event.reason[:64],
            "client_id": claimed_id(event.client_id),
            "agency_id": claimed_id(event.agency_id),
            "source": _printable(event.source or "")[:64] or None,
            "detail": _printable(event.detail)[:MAX_DETAIL],
        }
        log.warning(
            "security event kind=%s reason=%s client=%s agency=%s source=%s: %s",
            row["kind"], row["reason"], row["client_id"] or "-", row["agency_id"] or "-", row["source"] or "-", row["detail"],
        )
        self.db.run_write(lambda conn: conn.execute(insert(security_events).values(**row)))

    def recent(self, limit: int = 100) -> list[SecurityEvent]:
        rows = self.db.run_read(
            lambda conn: conn.execute(
                select(security_events).order_by(security_events.c.occurred_at.desc(), security_events.c.id.desc()).limit(limit)
            ).all()
        )
        return [
            SecurityEvent(r.kind, r.reason, r.detail, r.client_id, r.agency_id, r.source, r.occurred_at) for r in rows
        ]
