"""A worked case from the Level 3 tools, step by step (used by the tests and `gateway demo`).

A Queensland police referral at high risk; RFIs to child safety, police, health, corrections,
youth justice, housing and courts; the initial (3A) meeting with its safety plan; a 3B review
where risk rises to imminent after a custody release and a breach of the order, and a closure
attempt that is refused; a later review where risk falls; closure with the 3C summary.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Callable

from gateway.domain.agencies import Agency
from gateway.domain.case import CoordinationNotice, MultiAgencyCase
from gateway.domain.consent import ConsentRecord
from gateway.domain.forms import (
    AgencyInvolvement,
    AgencyUpdate,
    Attendance,
    CircumstanceChange,
    Closure,
    Meeting,
    MeetingKind,
    Referral,
    RfiInput,
    Signature,
)
from gateway.domain.people import Person
from gateway.domain.rfi import InformationRequest, ResponseItem, RfiStatus
from gateway.domain.risk import FactorObservation
from gateway.domain.safety_plan import ActionFeedback, SafetyPlanAction
from gateway.domain.team import Team, TeamMember
from gateway.domain.vocabulary import (
    AgencyType as T,
)
from gateway.domain.vocabulary import (
    ConsentStatus,
    InformationCategory,
    Jurisdiction,
    PrescribedStatus,
    ProtectiveFactor,
    RfiPurpose,
    RiskFactor,
    RiskLevel,
    SafetyMeasure,
    StrategyArea,
    SubjectRole,
    TeamRole,
    YesNoUnknown,
)
from gateway.errors import BusinessRuleViolation

QLD = Jurisdiction.QLD
PRESCRIBED = frozenset({PrescribedStatus.QLD_PRESCRIBED_ENTITY})
AGENCIES = [
    Agency("qps", "Queensland Police Service, Logan District", T.POLICE, QLD, PRESCRIBED),
    Agency("dfv-logan", "Logan Women's Domestic Violence Service", T.SPECIALIST_FV_VICTIM_SURVIVOR, QLD,
           frozenset({PrescribedStatus.QLD_SPECIALIST_DFV_SERVICE})),
    Agency("child-safety", "Department of Child Safety, Logan", T.CHILD_PROTECTION, QLD, PRESCRIBED),
    Agency("qh", "Queensland Health, Logan Hospital", T.HEALTH, QLD, PRESCRIBED),
    Agency("qcs", "Queensland Corrective Services", T.CORRECTIONS, QLD, PRESCRIBED),
    Agency("youth-justice", "Youth Justice, Logan", T.YOUTH_JUSTICE, QLD, PRESCRIBED),
    Agency("housing", "Department of Housing, Logan", T.HOUSING, QLD, PRESCRIBED),
    Agency("courts", "Beenleigh Magistrates Court", T.COURTS, QLD, PRESCRIBED),
]
RFI_TARGETS = ["child-safety", "qps", "qh", "qcs", "youth-justice", "housing", "courts"]
AGREED = date(2026, 11, 2)


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


@dataclass
class Step:
    title: str
    form: str  # which tool part the step fills in
    run: Callable[[dict], None]
    refused: bool = False  # the step is expected to be refused by a rule


@dataclass
class WorkedCase:
    case: MultiAgencyCase | None = None
    log: list[tuple[str, str]] = field(default_factory=list)  # (step title, outcome)


def people() -> list[Person]:
    return [
        Person("vs-mai", SubjectRole.ADULT_VICTIM_SURVIVOR, "Mai Tran", date(1991, 3, 14), address="(withheld: refuge)"),
        Person("puv-dan", SubjectRole.PERSON_USING_VIOLENCE, "Daniel Reid", date(1988, 7, 2), address="12 Example St, Logan"),
        Person("child-lily", SubjectRole.CHILD_VICTIM_SURVIVOR, "Lily Reid", age=6),
        Person("child-sam", SubjectRole.CHILD_VICTIM_SURVIVOR, "Sam Reid", age=15),
    ]


def team() -> Team:
    def member(agency_id, rep, *roles):
        return TeamMember(agency_id, rep, set(roles) or {TeamRole.CORE_MEMBER}, AGREED)

    return Team([
        member("dfv-logan", "Aroha Moore", TeamRole.LEAD_AGENCY, TeamRole.CHAIR, TeamRole.CORE_MEMBER),
        member("qps", "Sgt Priya Rao", TeamRole.CORE_MEMBER),
        member("child-safety", "Ben Ortiz", TeamRole.CORE_MEMBER),
        member("qh", "Dr Helen Ng", TeamRole.CORE_MEMBER),
        member("qcs", "Tom Walsh", TeamRole.CORE_MEMBER),
        member("youth-justice", "Kim Lee", TeamRole.ASSOCIATE_MEMBER),
        member("housing", "Ravi Singh", TeamRole.ASSOCIATE_MEMBER),
        member("courts", "J. Fraser", TeamRole.OBSERVER),
    ])


def referral() -> Referral:
    return Referral(
        referral_date=date(2026, 11, 1),
        referring_agency_id="qps",
        referral_contact="Sgt Priya Rao, Logan DV Taskforce, 07 0000 0000",
        consent_status=ConsentStatus.GIVEN,
        victim_survivor_risk=RiskLevel.HIGH,
        practitioner_risk=RiskLevel.HIGH,
        key_risk_factors=(
            FactorObservation("Non-fatal strangulation, October 2026", RiskFactor.STRANGULATION),
            FactorObservation("Recent separation (September 2026)", RiskFactor.SEPARATION),
            FactorObservation("Threatened to kill Mai if she left", RiskFactor.THREATS_TO_KILL),
        ),
        key_protective_factors=(FactorObservation("Temporary protection order made 28 Oct", protective_factor=ProtectiveFactor.PROTECTION_ORDER),),
        rationale="Level 2 CRAF assessment: high risk; strangulation and separation in the last two months.",
        prior_actions="Temporary protection order; Mai and children moved to a refuge.",
        agencies_involved=(AgencyInvolvement("Logan Women's DV Service", "07 0000 0001", "Case worker since October"),),
    )


def _attendance(*agency_ids: str) -> Attendance:
    reps = {m.agency_id: m.representative for m in team().members}
    return Attendance(tuple((a, reps[a]) for a in agency_ids), observers=("J. Fraser (courts)",), apologies=("Kim Lee (youth justice)",))


def steps() -> list[Step]:
    def refer(state):
        state["case"] = MultiAgencyCase.refer("case-logan-0427", QLD, referral(), people(), team())
        state["case"].record_consent(ConsentRecord("consent-mai", "vs-mai", ConsentStatus.GIVEN, date(2026, 11, 1), QLD,
                                                   views_sought=True, views="Wants police and the DV service to share"))
        state["case"].record_consent(ConsentRecord("consent-dan", "puv-dan", ConsentStatus.UNSAFE_TO_SEEK, date(2026, 11, 1), QLD,
                                                   reason="Seeking his consent would alert him to the coordination"))

    def send_rfis(state):
        case = state["case"]
        categories = {
            "child-safety": (InformationCategory.CHILD_PROTECTION,), "qps": (InformationCategory.CRIMINAL_HISTORY, InformationCategory.ORDER_STATUS),
            "qh": (InformationCategory.HEALTH, InformationCategory.MENTAL_HEALTH), "qcs": (InformationCategory.CUSTODY_STATUS,),
            "youth-justice": (InformationCategory.CRIMINAL_HISTORY,), "housing": (InformationCategory.HOUSING,),
            "courts": (InformationCategory.ORDER_STATUS,),
        }
        requested = at(date(2026, 11, 2))
        for target in RFI_TARGETS:
            requester = "dfv-logan" if target != "dfv-logan" else "qps"
            subject = "child-sam" if target == "youth-justice" else "puv-dan"
            case.request_information(InformationRequest(
                f"rfi-{target}", requester, target, (subject,), RfiPurpose.RISK_ASSESSMENT, categories[target],
                requested, InformationRequest.default_due(requested, urgent=False)))

    def answer_rfis(state):
        case = state["case"]
        answers = {
            "qps": "Two prior DV incidents (2024, 2025); TPO served 29 Oct.",
            "qcs": "Remanded in custody 30 Oct; bail hearing 18 Nov.",
            "qh": "ED presentation 12 Oct: neck injuries consistent with strangulation.",
            "child-safety": "Notification received 31 Oct; investigation open.",
            "courts": "Mention of protection order application 25 Nov.",
            "housing": "Priority housing application lodged.",
        }
        for target, text in answers.items():
            rfi = case.rfi(f"rfi-{target}")
            rfi.move_to(RfiStatus.ACCEPTED)
            rfi.respond([ResponseItem(rfi.categories[0], rfi.subject_ids[0], text, at(date(2026, 11, 3)))])
            case.record_rfi_input(RfiInput(next(a.type for a in AGENCIES if a.id == target),
                                           next(a.name for a in AGENCIES if a.id == target), text, date(2026, 11, 3)))

    def initial_meeting(state):
        case = state["case"]
        case.record_meeting(Meeting(
            MeetingKind.INITIAL, date(2026, 11, 4), _attendance("dfv-logan", "qps", "child-safety", "qh", "qcs", "housing"),
            RiskLevel.HIGH, rationale="Strangulation, threats to kill and separation; PuV on remand.",
            immediate_safety_concerns="Bail hearing 18 Nov could release him.", key_dates="Bail hearing 18 Nov; court mention 25 Nov",
            strategy_supports="Refuge place extended; counselling for Mai and Sam.",
            strategy_puv_visibility="QCS to notify the team before any release; police to flag address.",
            strategy_other="Child Safety to complete safety assessment.", next_meeting=date(2026, 11, 18)))
        for action in (
            SafetyPlanAction("action-release-alert", "Notify the team at once of any bail or release", "qcs", date(2026, 11, 18), StrategyArea.PUV_VISIBILITY),
            SafetyPlanAction("action-address-flag", "Flag the refuge address on police systems", "qps", date(2026, 11, 6), StrategyArea.PUV_VISIBILITY),
            SafetyPlanAction("action-duress-alarm", "Provide Mai with a personal duress alarm", "dfv-logan", date(2026, 11, 8), StrategyArea.SUPPORTS),
            SafetyPlanAction("action-health-alert", "Place a DFV alert on Mai's health record", "qh", date(2026, 11, 11), StrategyArea.OTHER),
        ):
            case.add_action(action)
        case.record_notice(CoordinationNotice("vs-mai", True, date(2026, 11, 4)))
        case.record_notice(CoordinationNotice("puv-dan", False, date(2026, 11, 4), "Unsafe: telling him would alert him to the coordination"))

    def feedback(state):
        case = state["case"]
        case.action("action-address-flag").record_feedback(ActionFeedback(date(2026, 11, 5), True, YesNoUnknown.YES, "Flag active"))
        case.action("action-duress-alarm").record_feedback(ActionFeedback(date(2026, 11, 7), True, YesNoUnknown.YES))

    def escalation(state):
        case = state["case"]
        case.record_meeting(Meeting(
            MeetingKind.REVIEW, date(2026, 11, 20), _attendance("dfv-logan", "qps", "qcs", "qh"), RiskLevel.IMMINENT,
            rationale="Released on bail 18 Nov; breached the order on 19 Nov by attending the school.",
            victim_survivor_risk=RiskLevel.IMMINENT,
            agency_updates=(
                AgencyUpdate(T.CORRECTIONS, "Queensland Corrective Services", "Released on bail 18 Nov with reporting conditions"),
                AgencyUpdate(T.POLICE, "Queensland Police Service, Logan District", "Breach reported 19 Nov; warrant sought"),
            ),
            puv_change=CircumstanceChange(YesNoUnknown.YES, "Released from remand; breached the protection order"),
            victim_survivor_change=CircumstanceChange(YesNoUnknown.NO),
            children_change=CircumstanceChange(YesNoUnknown.YES, "PuV attended Lily's school"),
            high_risk_factor_changes="Escalation after release", new_risk_factors=(
                FactorObservation("Released from custody 18 Nov", RiskFactor.RELEASE_FROM_CUSTODY),
                FactorObservation("Breached the order 19 Nov", RiskFactor.BREACH_OF_ORDER, frequency="once", severity="high"),
            ), next_meeting=date(2026, 12, 4)))
        case.action("action-release-alert").fail(ActionFeedback(date(2026, 11, 19), False, YesNoUnknown.NO, "Team told a day after release"))

    def refused_closure(state):
        state["case"].close(_closure(date(2026, 11, 21)))

    def recovery(state):
        state["case"].record_meeting(Meeting(
            MeetingKind.REVIEW, date(2026, 12, 18), _attendance("dfv-logan", "qps", "qcs"), RiskLevel.AT_RISK,
            rationale="PuV remanded again 22 Nov; final protection order made 25 Nov; Mai rehoused.",
            victim_survivor_risk=RiskLevel.AT_RISK, puv_change=CircumstanceChange(YesNoUnknown.YES, "Remanded in custody 22 Nov"),
            new_protective_factors=(FactorObservation("Final protection order 25 Nov", protective_factor=ProtectiveFactor.PROTECTION_ORDER),),
            can_close=True))

    def close(state):
        state["case"].close(_closure(date(2026, 12, 19)))

    return [
        Step("Police refer Mai at high risk", "3A Part 1", refer),
        Step("RFIs to seven agencies", "3A Part 2", send_rfis),
        Step("Agencies answer their RFIs", "3A Part 2", answer_rfis),
        Step("Initial meeting and safety plan", "3A Part 3", initial_meeting),
        Step("Feedback on actions", "MACM step 7", feedback),
        Step("Review: release and breach, risk imminent", "3B", escalation),
        Step("Closure attempted at imminent risk", "3C", refused_closure, refused=True),
        Step("Review: risk falls", "3B", recovery),
        Step("Case closed with the 3C summary", "3C", close),
    ]


def _closure(on: date) -> Closure:
    return Closure(
        closure_date=on, multi_agency_risk=RiskLevel.AT_RISK, victim_survivor_risk=RiskLevel.AT_RISK,
        victim_survivor_agrees=YesNoUnknown.YES, rationale="Final order, PuV on remand, Mai rehoused and engaged.",
        closure_note="Referred by QPS at high risk; escalated to imminent after a release and breach; managed by remand and a final order.",
        author=Signature("Aroha Moore", on), reviewer=Signature("Sgt Priya Rao", on),
        protective_factors=frozenset({ProtectiveFactor.PROTECTION_ORDER, ProtectiveFactor.PUV_IN_PRISON, ProtectiveFactor.DURESS_ALARM}),
        safety_measures=frozenset({SafetyMeasure.VICTIM_SURVIVOR_SAFE, SafetyMeasure.REFERRALS_CONFIRMED}),
        agencies_staying_involved=(AgencyInvolvement("Logan Women's DV Service", "07 0000 0001", "Ongoing support for 3 months"),),
    )


def run() -> WorkedCase:
    """Run every step; a step expected to be refused must be refused by a rule."""
    state: dict = {}
    result = WorkedCase()
    for step in steps():
        try:
            step.run(state)
        except BusinessRuleViolation as refusal:
            if not step.refused:
                raise
            result.log.append((step.title, f"refused: {refusal.message}"))
            continue
        if step.refused:
            raise AssertionError(f"step '{step.title}' should have been refused")
        result.log.append((step.title, "done"))
    result.case = state["case"]
    return result
