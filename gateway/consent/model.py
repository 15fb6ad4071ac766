"""What a consent decision is asked and what it answers. Plain data; the words are the vocabulary's."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

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


class Outcome(str, Enum):
    PERMIT = "permit"
    PERMIT_WITH_REDACTION = "permit-with-redaction"
    DENY = "deny"
    REFER = "refer"  # professional judgement: never released automatically


class Obligation(str, Enum):
    RECORD_DISCLOSURE = "record-disclosure"
    RECORD_REFUSAL = "record-refusal"
    WRITTEN_REASONS = "give-written-reasons-for-refusal"
    RECORD_CONSENT_BASIS = "record-consent-or-basis-without-consent"
    SEEK_VIEWS_VICTIM_SURVIVOR = "seek-views-of-victim-survivor-if-safe"
    SEEK_VIEWS_CHILD = "seek-views-of-child-and-non-violent-family-if-safe"
    RECORD_VIEWS = "record-whether-views-were-sought"
    INFORM_WHEN_SAFE = "inform-victim-survivor-of-sharing-without-consent-when-safe"
    DO_NOT_INFORM_PUV = "do-not-inform-person-using-violence"
    SEEK_CONSENT = "seek-consent-if-safe"
    CONSIDER_SAFETY = "consider-whether-sharing-may-adversely-affect-safety"
    MINIMUM_NECESSARY = "share-only-what-is-necessary"
    CONFIDENTIALITY = "confirm-confidentiality-agreement"


@dataclass(frozen=True)
class Party:
    agency_type: AgencyType
    prescribed: frozenset[PrescribedStatus] = frozenset()
    id: str | None = None


@dataclass(frozen=True)
class ConsentOnFile:
    status: ConsentStatus
    recipients: tuple[str, ...] = ()  # agency ids or agency types; empty: any recipient
    date: datetime | None = None  # when it was given, refused or withdrawn

    def covers(self, party: Party) -> bool:
        return not self.recipients or party.agency_type.value in self.recipients or (party.id or "") in self.recipients


@dataclass(frozen=True)
class DecisionRequest:
    jurisdiction: Jurisdiction
    purpose: RfiPurpose
    requester: Party
    releaser: Party
    subject_role: SubjectRole
    category: InformationCategory
    excluded: frozenset[ExcludedInformation] = frozenset()
    consent: ConsentOnFile = ConsentOnFile(ConsentStatus.NOT_SOUGHT)
    serious_threat: bool = False
    child_at_risk: bool = False
    at: datetime | None = None  # when the release would happen (default: now)


@dataclass(frozen=True)
class Decision:
    decision: Outcome
    legal_basis: str
    rule: str
    obligations: tuple[Obligation, ...]
    redactions: tuple[str, ...]
    explanation: str
    policy: str  # scheme and revision, e.g. "VIC@2026-11-24.1"
    decision_id: str = field(default="")

    @property
    def releases(self) -> bool:
        return self.decision in (Outcome.PERMIT, Outcome.PERMIT_WITH_REDACTION)
