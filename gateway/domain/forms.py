"""The content of the Level 3 tools: 3A intake (referral, RFIs, initial meeting), 3B review, 3C closure.

Each class carries the answers of one form part as plain data; the rules that span a whole case
(a review follows a meeting, no closure at imminent risk) live on MultiAgencyCase.
"""

from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from gateway.domain.risk import FactorObservation, RiskDetermination
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    ProtectiveFactor,
    RiskDeterminedBy,
    RiskLevel,
    SafetyMeasure,
    YesNoUnknown,
)
from gateway.errors import BusinessRuleViolation


@dataclass(frozen=True)
class AgencyInvolvement:
    """A row of '3A Part 1 B: agencies previously and currently involved' or '3C: agencies staying involved'."""

    agency_name: str
    contact_details: str = ""
    details: str = ""


@dataclass(frozen=True)
class Referral:
    """3A Part 1: referral summary and victim-survivor information."""

    referral_date: date
    referring_agency_id: str
    referral_contact: str
    consent_status: ConsentStatus
    victim_survivor_risk: RiskLevel
    practitioner_risk: RiskLevel
    key_risk_factors: tuple[FactorObservation, ...] = ()
    key_protective_factors: tuple[FactorObservation, ...] = ()
    rationale: str = ""
    prior_actions: str = ""
    agencies_involved: tuple[AgencyInvolvement, ...] = ()

    def __post_init__(self) -> None:
        if self.practitioner_risk not in (RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.AT_RISK):
            raise BusinessRuleViolation.at(
                "referral.practitioner_risk", "The practitioner's risk level at referral is imminent, high or at-risk"
            )

    def determinations(self) -> list[RiskDetermination]:
        return [
            RiskDetermination(self.victim_survivor_risk, RiskDeterminedBy.VICTIM_SURVIVOR, self.referral_date),
            RiskDetermination(
                self.practitioner_risk,
                RiskDeterminedBy.PRACTITIONER,
                self.referral_date,
                self.rationale,
                self.key_risk_factors + self.key_protective_factors,
            ),
        ]


@dataclass(frozen=True)
class RfiInput:
    """A row of 3A Part 2: an organisation's input to the initial assessment."""

    organisation_type: AgencyType
    organisation_name: str
    input: str
    input_date: date


@dataclass(frozen=True)
class AgencyUpdate:
    """A row of 3B Part 2: an organisation's update on its actions since the last meeting."""

    organisation_type: AgencyType
    organisation_name: str
    update: str


@dataclass(frozen=True)
class Attendance:
    """Who was at a meeting (3A Part 3 A, 3B Part 1)."""

    present: tuple[tuple[str, str], ...]  # (agency id, representative)
    observers: tuple[str, ...] = ()
    apologies: tuple[str, ...] = ()
    conflicts_of_interest: str = ""


class MeetingKind(str, Enum):
    INITIAL = "3A"  # Part 3: initial multi-agency risk management assessment and strategy
    REVIEW = "3B"  # ongoing review, one per later meeting


@dataclass(frozen=True)
class CircumstanceChange:
    """3B Part 3: has there been any change in someone's circumstances?"""

    changed: YesNoUnknown
    details: str = ""


@dataclass(frozen=True)
class Meeting:
    kind: MeetingKind
    meeting_date: date
    attendance: Attendance
    multi_agency_risk: RiskLevel
    rationale: str = ""
    victim_survivor_risk: RiskLevel | None = None  # 3B Part 5 asks for the updated self-assessment
    immediate_safety_concerns: str = ""
    key_dates: str = ""
    strategy_supports: str = ""  # 3A Part 3 B 1
    strategy_puv_visibility: str = ""  # 3A Part 3 B 2
    strategy_other: str = ""  # 3A Part 3 B 3
    agency_updates: tuple[AgencyUpdate, ...] = ()  # 3B Part 2
    victim_survivor_change: CircumstanceChange | None = None  # 3B Part 3
    puv_change: CircumstanceChange | None = None
    children_change: CircumstanceChange | None = None
    high_risk_factor_changes: str = ""  # 3B Part 4
    new_risk_factors: tuple[FactorObservation, ...] = ()
    protective_factor_changes: str = ""
    new_protective_factors: tuple[FactorObservation, ...] = ()
    can_close: bool = False
    next_meeting: date | None = None

    def __post_init__(self) -> None:
        allowed = (RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.AT_RISK)
        if self.kind is MeetingKind.REVIEW:
            allowed += (RiskLevel.NO_LOW,)
        if self.multi_agency_risk not in allowed:
            choices = ", ".join(level.value for level in allowed)
            raise BusinessRuleViolation.at(
                "multi_agency_risk", f"A {self.kind.value} meeting's multi-agency risk level is one of {choices}"
            )
        if self.next_meeting is not None and self.next_meeting <= self.meeting_date:
            raise BusinessRuleViolation.at("next_meeting", "The next meeting must be after this one")

    def determinations(self) -> list[RiskDetermination]:
        factors = self.new_risk_factors + self.new_protective_factors
        found = [RiskDetermination(self.multi_agency_risk, RiskDeterminedBy.MULTI_AGENCY, self.meeting_date, self.rationale, factors)]
        if self.victim_survivor_risk is not None:
            found.append(RiskDetermination(self.victim_survivor_risk, RiskDeterminedBy.VICTIM_SURVIVOR, self.meeting_date))
        return found


@dataclass(frozen=True)
class Signature:
    name: str
    signed_on: date


@dataclass(frozen=True)
class Closure:
    """3C: case summary and closure."""

    closure_date: date
    multi_agency_risk: RiskLevel
    victim_survivor_risk: RiskLevel
    victim_survivor_agrees: YesNoUnknown
    rationale: str
    closure_note: str
    author: Signature | None
    reviewer: Signature | None
    agreement_details: str = ""
    protective_factors: frozenset[ProtectiveFactor] = field(default_factory=frozenset)
    protective_factors_other: str = ""
    safety_measures: frozenset[SafetyMeasure] = field(default_factory=frozenset)
    safety_measures_other: str = ""
    agencies_staying_involved: tuple[AgencyInvolvement, ...] = ()

    def __post_init__(self) -> None:
        if self.author is None or not self.author.name.strip():
            raise BusinessRuleViolation.at("closure.author", "A 3C closure names the author of the closure summary")
        if self.reviewer is None or not self.reviewer.name.strip():
            raise BusinessRuleViolation.at("closure.reviewer", "A 3C closure names its reviewer and approver")
        if self.multi_agency_risk is RiskLevel.IMMINENT:
            raise BusinessRuleViolation.at("closure.multi_agency_risk", "A case cannot be closed at imminent risk")
        if self.victim_survivor_agrees is not YesNoUnknown.YES and not self.agreement_details.strip():
            raise BusinessRuleViolation.at(
                "closure.agreement_details",
                "When the victim survivor does not agree to closure, or it is unknown, detail why (3C)",
            )
        if ProtectiveFactor.OTHER in self.protective_factors and not self.protective_factors_other.strip():
            raise BusinessRuleViolation.at("closure.protective_factors_other", "Specify the 'other' protective factor")
