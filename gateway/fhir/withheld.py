"""How a FHIR response says that records were not released to the caller.

The release check itself is the case layer's (gateway.cases.record_release); the FHIR service
only needs to know what it left out and why:

- a read or vread of a withheld record answers 403 with an OperationOutcome, code `suppressed`
  ("not returned because of a policy"), giving the reason class and the engine's explanation;
- a search adds one OperationOutcome entry (`search.mode` outcome) naming each record left out;
- a history entry for a withheld version has no resource, and a 403 response with that outcome.
The reason classes are the ones RFI answers use (WithheldReason), so an integrator handles both
the same way. Records that were released with parts cut out carry the v3 REDACTED label instead.
"""

from dataclasses import dataclass

from gateway.domain.vocabulary import WithheldReason
from gateway.errors import Forbidden, Issue, operation_outcome
from gateway.store.resources import StoredVersion


@dataclass(frozen=True)
class WithheldRecord:
    resource_type: str
    resource_id: str
    version_id: int
    reason: WithheldReason
    explanation: str

    @property
    def issue(self) -> Issue:
        where = f"{self.resource_type}/{self.resource_id}"
        return Issue(
            f"{where} is withheld ({self.reason.value}: {self.reason.display}). {self.explanation}",
            (self.resource_type,), code="suppressed", severity="warning",
        )


@dataclass
class Screened:
    """What a release check let through (some perhaps redacted) and what it left out."""

    released: list[StoredVersion]
    withheld: list[WithheldRecord]


class Withheld(Forbidden):
    code = "suppressed"

    @classmethod
    def of(cls, record: WithheldRecord) -> "Withheld":
        issue = record.issue
        return cls(issue.diagnostics, [Issue(issue.diagnostics, issue.expression, "suppressed")])


def withheld_outcome(records: list[WithheldRecord]) -> dict:
    return operation_outcome([record.issue for record in records], "suppressed")
