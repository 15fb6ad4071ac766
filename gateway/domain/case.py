"""A multi-agency case from referral to closure: the aggregate that guards the Level 3 rules."""

from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from gateway.domain import events
from gateway.domain.consent import ConsentRecord
from gateway.domain.forms import Closure, Meeting, MeetingKind, Referral, RfiInput
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest
from gateway.domain.risk import RiskDetermination
from gateway.domain.safety_plan import SafetyPlanAction
from gateway.domain.team import Team
from gateway.domain.vocabulary import FlagType, Jurisdiction, RiskDeterminedBy, RiskLevel, SubjectRole
from gateway.errors import BusinessRuleViolation

_SEVERITY = {RiskLevel.NO_LOW: 0, RiskLevel.AT_RISK: 1, RiskLevel.HIGH: 2, RiskLevel.IMMINENT: 3}


class CaseStatus(str, Enum):  # FHIR EpisodeOfCare status codes
    REFERRED = "waitlist"
    ACTIVE = "active"
    CLOSED = "finished"


@dataclass(frozen=True)
class CoordinationNotice:
    """Whether a person was told that agencies are coordinating (MARAM 9.4.1; 9.2.1 for the PuV)."""

    person_id: str
    informed: bool
    on: date
    reason: str = ""  # why not: e.g. unsafe to tell the person using violence

    def __post_init__(self) -> None:
        if not self.informed and not self.reason.strip():
            raise BusinessRuleViolation.at("informed.reason", "When a person was not informed, record why")


@dataclass
class MultiAgencyCase:
    id: str
    jurisdiction: Jurisdiction
    referral: Referral
    people: list[Person]
    team: Team
    status: CaseStatus = CaseStatus.REFERRED
    rfi_inputs: list[RfiInput] = field(default_factory=list)
    meetings: list[Meeting] = field(default_factory=list)
    actions: list[SafetyPlanAction] = field(default_factory=list)
    rfis: list[InformationRequest] = field(default_factory=list)
    consents: list[ConsentRecord] = field(default_factory=list)
    notices: list[CoordinationNotice] = field(default_factory=list)
    closure: Closure | None = None
    events: list = field(default_factory=list)

    # -- referral (3A Part 1) -----------------------------------------------------------------

    @classmethod
    def refer(cls, case_id: str, jurisdiction: Jurisdiction, referral: Referral, people: list[Person], team: Team) -> "MultiAgencyCase":
        if not any(p.is_victim_survivor for p in people):
            raise BusinessRuleViolation.at("people", "A referral names at least one victim survivor")
        if len({p.id for p in people}) != len(people):
            raise BusinessRuleViolation.at("people", "Each person appears once in a case")
        team.check()
        team.require_member(referral.referring_agency_id, "referral.referring_agency")
        case = cls(case_id, jurisdiction, referral, people, team)
        case.events.append(events.CaseReferred(case_id, referral.referring_agency_id))
        return case

    def person(self, person_id: str) -> Person:
        found = next((p for p in self.people if p.id == person_id), None)
        if found is None:
            raise BusinessRuleViolation.at("subjects", f"Person {person_id} is not part of case {self.id}")
        return found

    def people_with_role(self, role: SubjectRole) -> list[Person]:
        return [p for p in self.people if p.role is role]

    # -- 3A Part 2 and RFIs ---------------------------------------------------------------------

    def record_rfi_input(self, item: RfiInput) -> None:
        self._require_open()
        self.rfi_inputs.append(item)

    def request_information(self, rfi: InformationRequest) -> None:
        self._require_open()
        self.team.require_member(rfi.requester_agency_id, "requester_agency")
        for subject_id in rfi.subject_ids:
            self.person(subject_id)
        self.rfis.append(rfi)
        self.events.append(events.InformationRequested(self.id, rfi.id, rfi.target_agency_id))

    def rfi(self, rfi_id: str) -> InformationRequest:
        found = next((r for r in self.rfis if r.id == rfi_id), None)
        if found is None:
            raise BusinessRuleViolation.at("rfi", f"RFI {rfi_id} is not part of case {self.id}")
        return found

    # -- meetings (3A Part 3, 3B) -----------------------------------------------------------------

    def record_meeting(self, meeting: Meeting) -> None:
        self._require_open()
        if meeting.kind is MeetingKind.INITIAL and self.meetings:
            raise BusinessRuleViolation.at("kind", "The initial (3A) meeting has already been held; record a 3B review")
        if meeting.kind is MeetingKind.REVIEW:
            if not self.meetings:
                raise BusinessRuleViolation.at("kind", "A 3B review follows an earlier meeting; hold the initial 3A meeting first")
            if meeting.meeting_date <= self.meetings[-1].meeting_date:
                raise BusinessRuleViolation.at("meeting_date", "A 3B review is dated after the previous meeting")
        for agency_id, _rep in meeting.attendance.present:
            self.team.require_member(agency_id, "attendance.present")
        previous = self.current_risk(RiskDeterminedBy.MULTI_AGENCY)
        self.meetings.append(meeting)
        self.status = CaseStatus.ACTIVE
        self._note_risk_change(previous, meeting)

    def _note_risk_change(self, previous: RiskDetermination | None, meeting: Meeting) -> None:
        before = previous.level if previous else None
        now = meeting.multi_agency_risk
        if before == now:
            return
        self.events.append(events.RiskLevelChanged(self.id, before, now, meeting.meeting_date))
        if before is not None and _SEVERITY.get(now, 0) > _SEVERITY.get(before, 0):
            self.events.append(
                events.RedFlagRaised(self.id, FlagType.RISK_ESCALATION, meeting.meeting_date, f"Risk rose from {before.value} to {now.value}")
            )

    # -- safety plan ------------------------------------------------------------------------------

    def add_action(self, action: SafetyPlanAction) -> None:
        self._require_open()
        self.team.require_member(action.responsible_agency_id, "responsible_agency")
        if any(a.id == action.id for a in self.actions):
            raise BusinessRuleViolation.at("action", f"Action {action.id} is already in the safety plan")
        self.actions.append(action)

    def action(self, action_id: str) -> SafetyPlanAction:
        found = next((a for a in self.actions if a.id == action_id), None)
        if found is None:
            raise BusinessRuleViolation.at("action", f"Action {action_id} is not in case {self.id}'s safety plan")
        return found

    # -- consent and who was told -------------------------------------------------------------------

    def record_consent(self, record: ConsentRecord) -> None:
        self.person(record.subject_id)
        self.consents.append(record)

    def record_notice(self, notice: CoordinationNotice) -> None:
        self.person(notice.person_id)
        self.notices.append(notice)

    def notice_for(self, role: SubjectRole) -> list[CoordinationNotice]:
        ids = {p.id for p in self.people_with_role(role)}
        return [n for n in self.notices if n.person_id in ids]

    # -- closure (3C) ---------------------------------------------------------------------------------

    def close(self, closure: Closure) -> None:
        self._require_open()
        latest = self.current_risk(RiskDeterminedBy.MULTI_AGENCY)
        if latest is not None and latest.level is RiskLevel.IMMINENT:
            raise BusinessRuleViolation.at(
                "closure", "The case cannot be closed: the latest multi-agency risk level is imminent (3C)"
            )
        if not self.meetings:
            raise BusinessRuleViolation.at("closure", "A case is closed after at least one multi-agency meeting")
        if closure.closure_date < self.meetings[-1].meeting_date:
            raise BusinessRuleViolation.at("closure.closure_date", "Closure is dated on or after the last meeting")
        for role, words in (
            (SubjectRole.ADULT_VICTIM_SURVIVOR, "the victim survivor"),
            (SubjectRole.PERSON_USING_VIOLENCE, "the person using violence"),
        ):
            if self.people_with_role(role) and not self.notice_for(role):
                raise BusinessRuleViolation.at(
                    "informed", f"Record whether {words} was informed of the coordination before closing (MARAM 9.4.1)"
                )
        self.closure = closure
        self.status = CaseStatus.CLOSED
        self.events.append(events.CaseClosed(self.id, closure.closure_date))

    def _require_open(self) -> None:
        if self.status is CaseStatus.CLOSED:
            raise BusinessRuleViolation.at("status", f"Case {self.id} is closed")

    # -- risk ---------------------------------------------------------------------------------------

    def risk_history(self) -> list[RiskDetermination]:
        return [d for _, found in self.risk_by_form() for d in found]

    def risk_by_form(self) -> list[tuple[str, list[RiskDetermination]]]:
        """Each Level 3 form's determinations, oldest first, by the form's key: `3a` (the referral and
        the initial meeting), `3b-1`, `3b-2`... (the reviews, in order), `3c` (the closure)."""
        initial = [d for m in self.meetings if m.kind is MeetingKind.INITIAL for d in m.determinations()]
        forms = [("3a", self.referral.determinations() + initial)]
        reviews = [m for m in self.meetings if m.kind is MeetingKind.REVIEW]
        forms += [(f"3b-{index}", m.determinations()) for index, m in enumerate(reviews, start=1)]
        if self.closure is not None:
            forms.append(("3c", [
                RiskDetermination(self.closure.multi_agency_risk, RiskDeterminedBy.MULTI_AGENCY, self.closure.closure_date),
                RiskDetermination(self.closure.victim_survivor_risk, RiskDeterminedBy.VICTIM_SURVIVOR, self.closure.closure_date),
            ]))
        return forms

    def current_risk(self, by: RiskDeterminedBy) -> RiskDetermination | None:
        mine = [d for d in self.risk_history() if d.determined_by is by]
        return mine[-1] if mine else None
