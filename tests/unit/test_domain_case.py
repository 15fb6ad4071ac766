"""The Level 3 rules, as a coordinator meets them while working one case."""

from datetime import date, datetime, timezone

import pytest

from gateway.domain.case import CaseStatus, CoordinationNotice, MultiAgencyCase
from gateway.domain.consent import ConsentRecord
from gateway.domain.events import RedFlagRaised, RiskLevelChanged
from gateway.domain.forms import Attendance, Closure, Meeting, MeetingKind, Referral, Signature
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest, ResponseItem, RfiStatus
from gateway.domain.safety_plan import ActionFeedback, ActionStatus, SafetyPlanAction
from gateway.domain.vocabulary import StrategyArea
from gateway.domain.summary import WithheldPart, Withholding, summarise
from gateway.domain.team import Team, TeamMember
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    IndigenousStatus,
    InformationCategory,
    Jurisdiction,
    RfiPurpose,
    RiskDeterminedBy,
    RiskLevel,
    SubjectRole,
    TeamRole,
    YesNoUnknown,
)
from gateway.errors import BusinessRuleViolation

TYPES = {"police": AgencyType.POLICE, "health": AgencyType.HEALTH, "dfv": AgencyType.SPECIALIST_FV_VICTIM_SURVIVOR,
         "acco": AgencyType.ACCO, "corrections": AgencyType.CORRECTIONS}
NOW = datetime(2026, 11, 24, 9, tzinfo=timezone.utc)


def team(*extra: TeamMember) -> Team:
    return Team([
        TeamMember("police", "Sgt Rao", {TeamRole.LEAD_AGENCY, TeamRole.CORE_MEMBER}, date(2026, 11, 2)),
        TeamMember("health", "Dr Ng", {TeamRole.CORE_MEMBER}, date(2026, 11, 2)),
        TeamMember("dfv", "A. Moore", {TeamRole.CHAIR, TeamRole.CORE_MEMBER}, date(2026, 11, 2)),
        *extra,
    ])


def referral(**changes) -> Referral:
    values = dict(referral_date=date(2026, 11, 1), referring_agency_id="police", referral_contact="Sgt Rao 000",
                  consent_status=ConsentStatus.GIVEN, victim_survivor_risk=RiskLevel.HIGH, practitioner_risk=RiskLevel.HIGH)
    return Referral(**{**values, **changes})


def people(indigenous=None) -> list[Person]:
    return [
        Person("vs", SubjectRole.ADULT_VICTIM_SURVIVOR, "Mai Nguyen", indigenous_status=indigenous),
        Person("puv", SubjectRole.PERSON_USING_VIOLENCE, "Dan Nguyen"),
        Person("child", SubjectRole.CHILD_VICTIM_SURVIVOR, "Lily", age=6),
    ]


def new_case(indigenous=None, members=None) -> MultiAgencyCase:
    return MultiAgencyCase.refer("case-1", Jurisdiction.VIC, referral(), people(indigenous), members or team())


def meeting(kind=MeetingKind.INITIAL, on=date(2026, 11, 5), risk=RiskLevel.HIGH, **more) -> Meeting:
    return Meeting(kind, on, Attendance((("police", "Sgt Rao"), ("health", "Dr Ng"))), risk, **more)


def closure(**changes) -> Closure:
    values = dict(closure_date=date(2026, 12, 20), multi_agency_risk=RiskLevel.AT_RISK, victim_survivor_risk=RiskLevel.AT_RISK,
                  victim_survivor_agrees=YesNoUnknown.YES, rationale="Risk reduced", closure_note="Summary",
                  author=Signature("A. Moore", date(2026, 12, 20)), reviewer=Signature("M. Chair", date(2026, 12, 21)))
    return Closure(**{**values, **changes})


def told_everyone(case):
    case.record_notice(CoordinationNotice("vs", True, date(2026, 11, 5)))
    case.record_notice(CoordinationNotice("puv", False, date(2026, 11, 5), "Unsafe: would alert him to the coordination"))


class TestLeadAgency:
    def test_a_case_has_exactly_one_lead_agency(self):
        without_lead = Team([TeamMember("police", "Sgt Rao", {TeamRole.CORE_MEMBER})])
        with pytest.raises(BusinessRuleViolation, match="exactly one lead agency"):
            MultiAgencyCase.refer("c", Jurisdiction.VIC, referral(), people(), without_lead)

    def test_a_second_lead_is_refused_and_nomination_moves_the_role(self):
        case = new_case()
        with pytest.raises(BusinessRuleViolation, match="already has a lead agency"):
            case.team.add(TeamMember("acco", "K. Smith", {TeamRole.LEAD_AGENCY}))
        case.team.nominate_lead("dfv")
        assert case.team.lead_agency() == "dfv"
        case.team.check()


class TestSafetyPlanActions:
    def test_an_action_needs_who_and_by_when(self):
        with pytest.raises(BusinessRuleViolation, match="agency responsible") as who:
            SafetyPlanAction("a1", "Safety audit of home", None, date(2026, 11, 10))
        assert who.value.issues[0].expression == ("responsible_agency",)
        with pytest.raises(BusinessRuleViolation, match="timeframe"):
            SafetyPlanAction("a1", "Safety audit of home", "dfv", None)

    def test_the_responsible_agency_must_be_on_the_team(self):
        case = new_case()
        with pytest.raises(BusinessRuleViolation, match="not on the case's team"):
            case.add_action(SafetyPlanAction("a1", "Check bail conditions", "corrections", date(2026, 11, 10)))

    def test_overdue_and_feedback(self):
        action = SafetyPlanAction("a1", "Install duress alarm", "dfv", date(2026, 11, 10), StrategyArea.SUPPORTS)
        assert action.is_overdue(date(2026, 11, 11)) and not action.is_overdue(date(2026, 11, 10))
        action.record_feedback(ActionFeedback(date(2026, 11, 9), True, YesNoUnknown.YES, "Alarm fitted"))
        assert action.status is ActionStatus.DONE and not action.is_overdue(date(2026, 12, 1))


class TestMeetingsAndClosure:
    def test_a_review_follows_an_earlier_meeting(self):
        case = new_case()
        with pytest.raises(BusinessRuleViolation, match="follows an earlier meeting"):
            case.record_meeting(meeting(MeetingKind.REVIEW))
        case.record_meeting(meeting())
        with pytest.raises(BusinessRuleViolation, match="already been held"):
            case.record_meeting(meeting())
        with pytest.raises(BusinessRuleViolation, match="dated after"):
            case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2026, 11, 5)))
        case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2026, 11, 19), risk=RiskLevel.NO_LOW))

    def test_no_closure_while_the_latest_multi_agency_risk_is_imminent(self):
        case = new_case()
        told_everyone(case)
        case.record_meeting(meeting())
        case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2026, 11, 19), risk=RiskLevel.IMMINENT))
        with pytest.raises(BusinessRuleViolation, match="latest multi-agency risk level is imminent"):
            case.close(closure())
        assert case.status is CaseStatus.ACTIVE
        case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2026, 12, 17), risk=RiskLevel.AT_RISK))
        case.close(closure())
        assert case.status is CaseStatus.CLOSED

    def test_closure_names_author_and_reviewer_and_is_never_at_imminent_risk(self):
        with pytest.raises(BusinessRuleViolation, match="author"):
            closure(author=None)
        with pytest.raises(BusinessRuleViolation, match="reviewer and approver"):
            closure(reviewer=Signature("  ", date(2026, 12, 21)))
        with pytest.raises(BusinessRuleViolation, match="imminent"):
            closure(multi_agency_risk=RiskLevel.IMMINENT)

    def test_closure_requires_a_record_of_who_was_informed(self):
        case = new_case()
        case.record_meeting(meeting())
        with pytest.raises(BusinessRuleViolation, match="informed"):
            case.close(closure())
        with pytest.raises(BusinessRuleViolation, match="record why"):
            CoordinationNotice("puv", False, date(2026, 11, 5))
        told_everyone(case)
        case.close(closure())
        with pytest.raises(BusinessRuleViolation, match="is closed"):
            case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2027, 1, 5)))

    def test_rising_risk_raises_a_red_flag(self):
        case = new_case()
        case.record_meeting(meeting())
        case.record_meeting(meeting(MeetingKind.REVIEW, on=date(2026, 11, 19), risk=RiskLevel.IMMINENT))
        changes = [e for e in case.events if isinstance(e, RiskLevelChanged)]
        flags = [e for e in case.events if isinstance(e, RedFlagRaised)]
        assert [c.current for c in changes] == [RiskLevel.HIGH, RiskLevel.IMMINENT]
        assert len(flags) == 1 and "imminent" in flags[0].description


class TestInformationRequests:
    def rfi(self, **changes):
        values = dict(id="rfi-1", requester_agency_id="police", target_agency_id="health", subject_ids=("puv",),
                      purpose=RfiPurpose.RISK_ASSESSMENT, categories=(InformationCategory.MENTAL_HEALTH,),
                      requested_on=NOW, due=InformationRequest.default_due(NOW, urgent=True), urgent=True)
        return InformationRequest(**{**values, **changes})

    def test_lifecycle(self):
        rfi = self.rfi()
        with pytest.raises(BusinessRuleViolation, match="cannot go from requested to completed"):
            rfi.move_to(RfiStatus.COMPLETED)
        rfi.move_to(RfiStatus.ACCEPTED)
        rfi.respond([ResponseItem(InformationCategory.MENTAL_HEALTH, "puv", "Admitted 2026-10", NOW)])
        assert rfi.status is RfiStatus.COMPLETED and not rfi.is_outstanding

    def test_rejection_needs_a_reason_and_urgent_rfis_fall_due_the_same_day(self):
        rfi = self.rfi()
        assert (rfi.due - rfi.requested_on).total_seconds() == 4 * 3600
        with pytest.raises(BusinessRuleViolation, match="Say why"):
            rfi.move_to(RfiStatus.REJECTED)
        assert rfi.is_overdue(datetime(2026, 11, 24, 14, tzinfo=timezone.utc))

    def test_requester_must_be_on_the_team_and_subjects_in_the_case(self):
        case = new_case()
        with pytest.raises(BusinessRuleViolation, match="not on the case's team"):
            case.request_information(self.rfi(requester_agency_id="corrections"))
        with pytest.raises(BusinessRuleViolation, match="not part of case"):
            case.request_information(self.rfi(subject_ids=("stranger",)))


class TestConsent:
    def test_not_sought_needs_a_reason(self):
        with pytest.raises(BusinessRuleViolation, match="needs the reason"):
            ConsentRecord("c1", "vs", ConsentStatus.UNSAFE_TO_SEEK, date(2026, 11, 1), Jurisdiction.VIC)
        record = ConsentRecord("c1", "vs", ConsentStatus.NOT_SOUGHT, date(2026, 11, 1), Jurisdiction.VIC,
                               reason="Victim survivor in hospital")
        assert record.covers("health")


class TestSummary:
    def test_summary_shows_current_risk_open_and_overdue_work(self):
        case = new_case()
        case.record_meeting(meeting(risk=RiskLevel.HIGH, victim_survivor_risk=RiskLevel.IMMINENT))
        case.add_action(SafetyPlanAction("a1", "Serve order", "police", date(2026, 11, 20)))
        case.add_action(SafetyPlanAction("a2", "Health alert", "health", date(2026, 12, 20)))
        summary = summarise(case, TYPES, NOW)
        assert summary.current_risk[RiskDeterminedBy.MULTI_AGENCY].level is RiskLevel.HIGH
        assert summary.current_risk[RiskDeterminedBy.VICTIM_SURVIVOR].level is RiskLevel.IMMINENT
        assert summary.current_risk[RiskDeterminedBy.PRACTITIONER].level is RiskLevel.HIGH
        assert [a.id for a in summary.overdue_actions] == ["a1"]
        assert [a.id for a in summary.open_actions] == ["a1", "a2"]
        assert summary.lead_agency == "police"

    def test_aboriginal_victim_survivor_without_an_acco_on_the_team_is_warned(self):
        case = new_case(indigenous=IndigenousStatus.ABORIGINAL)
        assert any("Aboriginal community-controlled" in w for w in summarise(case, TYPES, NOW).warnings)
        case.team.add(TeamMember("acco", "K. Smith", {TeamRole.CORE_MEMBER}, date(2026, 11, 3)))
        assert not any("Aboriginal community-controlled" in w for w in summarise(case, TYPES, NOW).warnings)

    def test_informed_status_and_confidentiality_are_warned_until_recorded(self):
        case = new_case(members=team(TeamMember("acco", "K. Smith")))
        found = summarise(case, TYPES, NOW).warnings
        assert any("Confidentiality not yet acknowledged by: acco" in w for w in found)
        assert any("victim survivor was informed" in w for w in found)
        told_everyone(case)
        case.team.acknowledge_confidentiality("acco", date(2026, 11, 6))
        assert summarise(case, TYPES, NOW).warnings == []

    def test_what_the_reader_may_not_be_shown_is_left_out_and_the_current_risk_follows_what_remains(self):
        case = new_case()
        case.record_meeting(meeting(risk=RiskLevel.HIGH, rationale="Strangulation reported"))
        case.record_meeting(meeting(MeetingKind.REVIEW, date(2026, 11, 12), RiskLevel.IMMINENT, rationale="Breached the order"))
        case.add_action(SafetyPlanAction("a1", "Serve order", "police", date(2026, 11, 30)))
        case.add_action(SafetyPlanAction("a2", "Health alert", "health", date(2026, 12, 20)))
        assert [key for key, _ in case.risk_by_form()] == ["3a", "3b-1"]
        part = WithheldPart("QuestionnaireResponse/c1-3b-1", "excluded-information", "It could prejudice an investigation")

        summary = summarise(case, TYPES, NOW, Withholding(forms=frozenset({"3b-1"}), redacted_forms=frozenset({"3a"}),
                                                          tasks=frozenset({"a1"}), parts=(part,)))

        assert summary.current_risk[RiskDeterminedBy.MULTI_AGENCY].level is RiskLevel.HIGH  # not the withheld review's
        assert [d.on for d in summary.risk_history] == [date(2026, 11, 1)] * 2 + [date(2026, 11, 5)]
        assert all(d.rationale == "" and d.factors == () for d in summary.risk_history)  # 3a's prose is redacted
        assert [a.id for a in summary.open_actions] == ["a2"] and summary.withheld == [part]
        whole = summarise(case, TYPES, NOW)
        assert whole.current_risk[RiskDeterminedBy.MULTI_AGENCY].rationale == "Breached the order" and whole.withheld == []


def test_a_factor_is_described_and_is_one_kind():
    from gateway.domain.risk import FactorObservation
    from gateway.domain.vocabulary import ProtectiveFactor, RiskFactor

    with pytest.raises(BusinessRuleViolation, match="Describe the factor"):
        FactorObservation("  ", RiskFactor.STALKING)
    with pytest.raises(BusinessRuleViolation, match="not both"):
        FactorObservation("Order", RiskFactor.BREACH_OF_ORDER, ProtectiveFactor.PROTECTION_ORDER)
