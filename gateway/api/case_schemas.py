"""Request and response bodies of the native case API (for agencies without FHIR).

Every coded field takes the gateway's vocabulary (gateway/domain/vocabulary.py; the same codes as
the CodeSystems in profiles/), so OpenAPI lists the allowed values and an unknown one is a 422
naming the field. `to_domain` turns a body into the domain objects the rules are checked on.
"""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain import forms
from gateway.domain.case import CoordinationNotice
from gateway.domain.consent import ConsentRecord
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest
from gateway.domain.risk import FactorObservation
from gateway.domain.safety_plan import SafetyPlanAction
from gateway.domain.summary import CaseSummary
from gateway.domain.team import Team, TeamMember
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    FactorPresence,
    IndigenousStatus,
    InformationCategory,
    Jurisdiction,
    ProtectiveFactor,
    RfiPurpose,
    RiskFactor,
    RiskLevel,
    SafetyMeasure,
    StrategyArea,
    SubjectRole,
    TeamRole,
    WithheldReason,
    YesNoUnknown,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactorIn(Body):
    description: str = Field(min_length=1)
    risk_factor: RiskFactor | None = None
    protective_factor: ProtectiveFactor | None = None
    presence: FactorPresence = FactorPresence.PRESENT
    frequency: str | None = None
    severity: str | None = None

    def to_domain(self) -> FactorObservation:
        return FactorObservation(self.description, self.risk_factor, self.protective_factor, self.presence, self.frequency, self.severity)


class PersonIn(Body):
    id: str = Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$", description="the caller's id for this person, unique in the case")
    role: SubjectRole
    name: str = Field(min_length=1)
    birth_date: date | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    address: str | None = None
    indigenous_status: IndigenousStatus | None = None
    cultural_identity: str | None = None

    def to_domain(self) -> Person:
        return Person(**self.model_dump())


class MemberIn(Body):
    agency: str = Field(description="Organization id of a registered agency")
    representative: str
    roles: list[TeamRole] = [TeamRole.CORE_MEMBER]
    confidentiality_acknowledged_on: date | None = None

    def to_domain(self) -> TeamMember:
        return TeamMember(self.agency, self.representative, set(self.roles), self.confidentiality_acknowledged_on)


class InvolvementIn(Body):
    agency_name: str
    contact_details: str = ""
    details: str = ""

    def to_domain(self) -> forms.AgencyInvolvement:
        return forms.AgencyInvolvement(self.agency_name, self.contact_details, self.details)


class ConsentIn(Body):
    person: str
    status: ConsentStatus
    recorded_on: date
    recipients: list[str] = Field(default=[], description="agency ids; empty means the whole team")
    reason: str | None = Field(default=None, description="why consent was not sought, or why seeking it was unsafe")
    views_sought: bool = False
    views: str | None = None

    def to_domain(self, jurisdiction: Jurisdiction, record_id: str) -> ConsentRecord:
        return ConsentRecord(record_id, self.person, self.status, self.recorded_on, jurisdiction, tuple(self.recipients),
                             self.reason, self.views_sought, self.views)


class NoticeIn(Body):
    person: str
    informed: bool
    on: date
    reason: str = ""

    def to_domain(self) -> CoordinationNotice:
        return CoordinationNotice(self.person, self.informed, self.on, self.reason)


class ReferralIn(Body):
    """Level 3A Part 1: referral summary and victim-survivor information."""

    jurisdiction: Jurisdiction
    referral_date: date
    referring_agency: str
    referral_contact: str
    consent_status: ConsentStatus
    victim_survivor_risk: RiskLevel
    practitioner_risk: RiskLevel
    key_risk_factors: list[FactorIn] = []
    key_protective_factors: list[FactorIn] = []
    rationale: str = ""
    prior_actions: str = ""
    agencies_involved: list[InvolvementIn] = []
    people: list[PersonIn] = Field(min_length=1)
    team: list[MemberIn] = Field(min_length=1, description="exactly one member has the lead-agency role")
    consents: list[ConsentIn] = []
    informed: list[NoticeIn] = []

    def to_referral(self) -> forms.Referral:
        return forms.Referral(
            self.referral_date, self.referring_agency, self.referral_contact, self.consent_status, self.victim_survivor_risk,
            self.practitioner_risk, tuple(f.to_domain() for f in self.key_risk_factors),
            tuple(f.to_domain() for f in self.key_protective_factors), self.rationale, self.prior_actions,
            tuple(i.to_domain() for i in self.agencies_involved),
        )


class RfiIn(Body):
    requester: str
    target: str
    subjects: list[str] = Field(min_length=1, description="ids of the people the request is about")
    purpose: RfiPurpose
    categories: list[InformationCategory] = Field(min_length=1)
    question: str = ""
    urgent: bool = Field(default=False, description="imminent risk: due within hours, not days")
    due: datetime | None = Field(default=None, description="defaults to 4 hours (urgent) or 3 days")

    def to_domain(self, rfi_id: str, now: datetime) -> InformationRequest:
        due = self.due or InformationRequest.default_due(now, self.urgent)
        return InformationRequest(rfi_id, self.requester, self.target, tuple(self.subjects), self.purpose, tuple(self.categories),
                                  now, due, self.urgent, self.question)


class RfiInputIn(Body):
    organisation_type: AgencyType
    organisation_name: str
    input: str
    input_date: date

    def to_domain(self) -> forms.RfiInput:
        return forms.RfiInput(self.organisation_type, self.organisation_name, self.input, self.input_date)


class RfisIn(Body):
    """Level 3A Part 2: requests for information to other agencies, and agencies' inputs."""

    requests: list[RfiIn] = []
    inputs: list[RfiInputIn] = []


class PresentIn(Body):
    agency: str
    representative: str


class ActionIn(Body):
    description: str = Field(min_length=1)
    responsible_agency: str | None = Field(default=None, description="who (required by the MACM guidelines)")
    due: date | None = Field(default=None, description="by when (required by the MACM guidelines)")
    area: StrategyArea = StrategyArea.OTHER

    def to_domain(self, action_id: str) -> SafetyPlanAction:
        return SafetyPlanAction(action_id, self.description, self.responsible_agency, self.due, self.area)


class ChangeIn(Body):
    changed: YesNoUnknown
    details: str = ""


class AgencyUpdateIn(Body):
    organisation_type: AgencyType
    organisation_name: str
    update: str


class MeetingIn(Body):
    """Level 3A Part 3 (form "3A", the initial meeting) or a Level 3B review (form "3B")."""

    form: forms.MeetingKind
    meeting_date: date
    present: list[PresentIn] = Field(min_length=1)
    observers: list[str] = []
    apologies: list[str] = []
    conflicts_of_interest: str = ""
    multi_agency_risk: RiskLevel
    rationale: str = ""
    victim_survivor_risk: RiskLevel | None = None
    immediate_safety_concerns: str = ""
    key_dates: str = ""
    strategy_supports: str = ""
    strategy_puv_visibility: str = ""
    strategy_other: str = ""
    agency_updates: list[AgencyUpdateIn] = []
    victim_survivor_change: ChangeIn | None = None
    puv_change: ChangeIn | None = None
    children_change: ChangeIn | None = None
    high_risk_factor_changes: str = ""
    new_risk_factors: list[FactorIn] = []
    protective_factor_changes: str = ""
    new_protective_factors: list[FactorIn] = []
    can_close: bool = False
    next_meeting: date | None = None
    actions: list[ActionIn] = Field(default=[], description="safety-plan actions agreed at this meeting")
    informed: list[NoticeIn] = []

    def to_meeting(self) -> forms.Meeting:
        change = lambda c: forms.CircumstanceChange(c.changed, c.details) if c else None  # noqa: E731
        return forms.Meeting(
            kind=self.form, meeting_date=self.meeting_date,
            attendance=forms.Attendance(tuple((p.agency, p.representative) for p in self.present), tuple(self.observers),
                                        tuple(self.apologies), self.conflicts_of_interest),
            multi_agency_risk=self.multi_agency_risk, rationale=self.rationale, victim_survivor_risk=self.victim_survivor_risk,
            immediate_safety_concerns=self.immediate_safety_concerns, key_dates=self.key_dates,
            strategy_supports=self.strategy_supports, strategy_puv_visibility=self.strategy_puv_visibility,
            strategy_other=self.strategy_other,
            agency_updates=tuple(forms.AgencyUpdate(u.organisation_type, u.organisation_name, u.update) for u in self.agency_updates),
            victim_survivor_change=change(self.victim_survivor_change), puv_change=change(self.puv_change),
            children_change=change(self.children_change), high_risk_factor_changes=self.high_risk_factor_changes,
            new_risk_factors=tuple(f.to_domain() for f in self.new_risk_factors),
            protective_factor_changes=self.protective_factor_changes,
            new_protective_factors=tuple(f.to_domain() for f in self.new_protective_factors),
            can_close=self.can_close, next_meeting=self.next_meeting,
        )


class SignatureIn(Body):
    name: str
    signed_on: date


class ClosureIn(Body):
    """Level 3C: case summary and closure."""

    closure_date: date
    multi_agency_risk: RiskLevel
    victim_survivor_risk: RiskLevel
    victim_survivor_agrees: YesNoUnknown
    agreement_details: str = ""
    rationale: str
    closure_note: str
    author: SignatureIn | None = None
    reviewer: SignatureIn | None = Field(default=None, description="reviewer and approver")
    protective_factors: list[ProtectiveFactor] = []
    protective_factors_other: str = ""
    safety_measures: list[SafetyMeasure] = []
    safety_measures_other: str = ""
    agencies_staying_involved: list[InvolvementIn] = []

    def to_domain(self) -> forms.Closure:
        sign = lambda s: forms.Signature(s.name, s.signed_on) if s else None  # noqa: E731
        return forms.Closure(
            self.closure_date, self.multi_agency_risk, self.victim_survivor_risk, self.victim_survivor_agrees, self.rationale,
            self.closure_note, sign(self.author), sign(self.reviewer), self.agreement_details, frozenset(self.protective_factors),
            self.protective_factors_other, frozenset(self.safety_measures), self.safety_measures_other,
            tuple(i.to_domain() for i in self.agencies_staying_involved),
        )


# -- responses -------------------------------------------------------------------------------------


class RiskOut(BaseModel):
    level: RiskLevel
    determined_by: str
    on: date
    rationale: str = ""


class ActionOut(BaseModel):
    id: str
    description: str
    responsible_agency: str
    due: date
    status: str
    overdue: bool


class RfiOut(BaseModel):
    id: str
    requester: str
    target: str
    categories: list[InformationCategory]
    status: str
    due: datetime
    urgent: bool
    overdue: bool


class WithheldOut(BaseModel):
    record: str = Field(description="the record left out, e.g. QuestionnaireResponse/<case>-3b-1 or Task/<id>")
    reason: WithheldReason = Field(description="why, as RFI answers and FHIR reads say it")
    explanation: str


class CaseSummaryOut(BaseModel):
    """The case as the calling agency may see it: what the release check withholds from it
    (docs/release-points.md) is left out of the risk history and the open work, and listed in
    `withheld`; a form released without its prose shows its levels with no rationale or factors."""

    id: str
    status: str
    lead_agency: str | None
    current_risk: dict[str, RiskOut | None] = Field(description="by who determined it: victim-survivor, practitioner, multi-agency")
    risk_history: list[RiskOut]
    open_actions: list[ActionOut]
    outstanding_rfis: list[RfiOut]
    warnings: list[str]
    withheld: list[WithheldOut]

    @classmethod
    def of(cls, summary: CaseSummary) -> "CaseSummaryOut":
        risk = lambda d: RiskOut(level=d.level, determined_by=d.determined_by.value, on=d.on, rationale=d.rationale) if d else None  # noqa: E731
        overdue_actions = {a.id for a in summary.overdue_actions}
        overdue_rfis = {r.id for r in summary.overdue_rfis}
        return cls(
            id=summary.case_id, status=summary.status, lead_agency=summary.lead_agency,
            current_risk={by.value: risk(d) for by, d in summary.current_risk.items()},
            risk_history=[risk(d) for d in summary.risk_history],
            open_actions=[ActionOut(id=a.id, description=a.description, responsible_agency=a.responsible_agency_id, due=a.due,
                                    status=a.status.value, overdue=a.id in overdue_actions) for a in summary.open_actions],
            outstanding_rfis=[RfiOut(id=r.id, requester=r.requester_agency_id, target=r.target_agency_id, categories=list(r.categories),
                                     status=r.status.value, due=r.due, urgent=r.urgent, overdue=r.id in overdue_rfis)
                              for r in summary.outstanding_rfis],
            warnings=summary.warnings,
            withheld=[WithheldOut(record=w.record, reason=w.reason, explanation=w.explanation) for w in summary.withheld],
        )


class CaseCreatedOut(BaseModel):
    id: str
    status: str
    fhir: str = Field(description="the case's EpisodeOfCare")


def team_of(body: ReferralIn) -> Team:
    return Team([m.to_domain() for m in body.team])
