"""The JSON document a decision is asked with and answered in (API and CLI alike).

Every coded field takes the gateway's vocabulary; an unknown value fails validation naming the
field (422 on the API, exit 2 on the CLI) instead of quietly becoming a deny.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gateway.consent.model import ConsentOnFile, Decision, DecisionRequest, Obligation, Outcome, Party
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    ExcludedInformation,
    InformationCategory,
    Jurisdiction,
    PrescribedStatus,
    RfiPurpose,
    SubjectRole,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyIn(Strict):
    agency_type: AgencyType
    prescribed: list[PrescribedStatus] = []
    id: str | None = None

    def to_domain(self) -> Party:
        return Party(self.agency_type, frozenset(self.prescribed), self.id)


class ConsentIn(Strict):
    status: ConsentStatus
    recipients: list[str] = Field(default=[], description="agency ids or agency types the consent extends to; empty: any")
    date: datetime | None = Field(default=None, description="when consent was given, refused or withdrawn")


class DecisionIn(Strict):
    jurisdiction: Jurisdiction
    purpose: RfiPurpose
    requester: PartyIn
    releaser: PartyIn
    subject_role: SubjectRole
    category: InformationCategory
    excluded: list[ExcludedInformation] = []
    consent: ConsentIn = ConsentIn(status=ConsentStatus.NOT_SOUGHT)
    serious_threat: bool = False
    child_at_risk: bool = False
    at: datetime | None = Field(default=None, description="when the release would happen; default now")

    def to_domain(self) -> DecisionRequest:
        consent = ConsentOnFile(self.consent.status, tuple(self.consent.recipients), self.consent.date)
        return DecisionRequest(
            self.jurisdiction, self.purpose, self.requester.to_domain(), self.releaser.to_domain(), self.subject_role,
            self.category, frozenset(self.excluded), consent, self.serious_threat, self.child_at_risk, self.at,
        )


class DecisionOut(BaseModel):
    decision: Outcome
    legal_basis: str
    rule: str
    obligations: list[Obligation]
    redactions: list[str]
    explanation: str
    policy: str
    decision_id: str

    @classmethod
    def of(cls, decision: Decision) -> "DecisionOut":
        return cls(
            decision=decision.decision, legal_basis=decision.legal_basis, rule=decision.rule,
            obligations=list(decision.obligations), redactions=list(decision.redactions),
            explanation=decision.explanation, policy=decision.policy, decision_id=decision.decision_id,
        )
