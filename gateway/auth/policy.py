"""What one request's caller may do: its SMART scopes per resource type, checked before any I/O.

Which rows of case data it sees is the store's part (gateway.store.agency_store, built with
this policy's `agency_id` and `refused`). Beyond the scopes a token carries:

- AuditEvents are the disclosure ledger: read and searched with the `audit` scope only (no
  `system/` scope reaches them), and written by the gateway's ledger only, never over the API;
- the agency registry (Organizations) and the conformance resources the gateway enforces
  (StructureDefinition, CodeSystem, ValueSet, Questionnaire) are written with the `admin` scope
  as well: an agency must not be able to change its own prescribed status or a profile.

Every refusal is kept in `refusals`; the API records them as security events once the request
is answered (they cannot be written inside the transaction that refused them).
"""

from dataclasses import dataclass, field

from gateway.auth.caller import Caller
from gateway.auth.scopes import ADMIN, AUDIT
from gateway.errors import Forbidden

LEDGER = "AuditEvent"
ADMIN_WRITTEN = frozenset({"Organization", "StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire", "SubscriptionTopic"})
READS = ("read", "search")


@dataclass(frozen=True)
class Refusal:
    reason: str  # a short code: insufficient-scope, not-on-team, ledger-read-only, filtered
    detail: str  # a sentence without secrets or personal data


@dataclass
class AccessPolicy:
    caller: Caller
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def agency_id(self) -> str:
        return self.caller.agency_id

    def require(self, resource_type: str, interaction: str) -> None:
        """`interaction`: create, read, update, delete or search on `resource_type`; Forbidden if not allowed."""
        scopes = self.caller.scopes
        if resource_type == LEDGER:
            if interaction not in READS:
                raise self._refuse("ledger-read-only", f"{interaction} on {LEDGER}: the disclosure ledger is written by the gateway only")
            if not scopes.has(AUDIT):
                raise self._refuse("insufficient-scope", f"{interaction} on {LEDGER} needs the '{AUDIT}' scope", AUDIT)
            return
        if not scopes.allows(resource_type, interaction):
            needed = f"system/{resource_type}.{interaction[0]}"
            raise self._refuse("insufficient-scope", f"the token does not allow {interaction} on {resource_type} (e.g. {needed})", needed)
        if resource_type in ADMIN_WRITTEN and interaction not in READS and not scopes.has(ADMIN):
            raise self._refuse("insufficient-scope", f"{interaction} on {resource_type} (the registry and profiles) needs the '{ADMIN}' scope", ADMIN)

    def refused(self, reason: str, detail: str) -> None:
        """Note a refusal decided elsewhere (the store's row checks)."""
        self.refusals.append(Refusal(reason, detail))

    def _refuse(self, reason: str, detail: str, scope: str | None = None) -> Forbidden:
        self.refused(reason, detail)
        refusal = Forbidden(f"This is not allowed: {detail}")
        if scope:
            refusal.headers = {"WWW-Authenticate": f'Bearer realm="gateway", error="insufficient_scope", scope="{scope}"'}
        return refusal
