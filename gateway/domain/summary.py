"""The case summary a coordinator opens first: risk now and over time, what is open, what is wrong."""

from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.domain.case import MultiAgencyCase
from gateway.domain.rfi import InformationRequest
from gateway.domain.risk import RiskDetermination
from gateway.domain.safety_plan import SafetyPlanAction
from gateway.domain.vocabulary import AgencyType, RiskDeterminedBy, SubjectRole


@dataclass(frozen=True)
class WithheldPart:
    """A record behind the summary that its reader is not released, and why (the release check's words)."""

    record: str  # e.g. QuestionnaireResponse/<case>-3b-1, Task/<id>
    reason: str  # a withheld-reason code: excluded-information, safety, professional-judgement, not-permitted
    explanation: str


@dataclass(frozen=True)
class CaseSummary:
    case_id: str
    status: str
    lead_agency: str | None
    current_risk: dict[RiskDeterminedBy, RiskDetermination | None]
    risk_history: list[RiskDetermination]
    open_actions: list[SafetyPlanAction]
    overdue_actions: list[SafetyPlanAction]
    outstanding_rfis: list[InformationRequest]
    overdue_rfis: list[InformationRequest]
    warnings: list[str]
    withheld: list[WithheldPart] = field(default_factory=list)


@dataclass(frozen=True)
class Withholding:
    """What of a case one agency may not be shown, as the release check decided it for that agency.

    Forms are named by their keys (`MultiAgencyCase.risk_by_form`). A redacted form shows its
    levels without its prose: the rationale and the factors are the practitioners' words."""

    forms: frozenset[str] = frozenset()
    redacted_forms: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()  # safety-plan actions and RFIs, by id
    parts: tuple[WithheldPart, ...] = ()

    def risk_history(self, case: MultiAgencyCase) -> list[RiskDetermination]:
        return [
            replace(d, rationale="", factors=()) if key in self.redacted_forms else d
            for key, found in case.risk_by_form() if key not in self.forms for d in found
        ]


def summarise(
    case: MultiAgencyCase, agency_types: dict[str, AgencyType], now: datetime, withholding: Withholding = Withholding()
) -> CaseSummary:
    """`agency_types` maps each team agency id to its type (the registry knows it, the case does not);
    `withholding` is what the reader may not be shown (nothing, for the case's own coordination)."""
    today = now.date()
    open_actions = [a for a in case.actions if a.is_open and a.id not in withholding.tasks]
    outstanding = [r for r in case.rfis if r.is_outstanding and r.id not in withholding.tasks]
    history = withholding.risk_history(case)
    return CaseSummary(
        case_id=case.id,
        status=case.status.value,
        lead_agency=case.team.lead_agency(),
        current_risk={by: next((d for d in reversed(history) if d.determined_by is by), None) for by in RiskDeterminedBy},
        risk_history=history,
        open_actions=open_actions,
        overdue_actions=[a for a in open_actions if a.is_overdue(today)],
        outstanding_rfis=outstanding,
        overdue_rfis=[r for r in outstanding if r.is_overdue(now)],
        warnings=warnings(case, agency_types),
        withheld=list(withholding.parts),
    )


def warnings(case: MultiAgencyCase, agency_types: dict[str, AgencyType]) -> list[str]:
    found = []
    first_nations = [p for p in case.people if p.is_victim_survivor and p.identifies_as_first_nations]
    has_acco = any(agency_types.get(m.agency_id) is AgencyType.ACCO for m in case.team.members)
    if first_nations and not has_acco:
        found.append(
            "The victim survivor identifies as Aboriginal or Torres Strait Islander and no Aboriginal "
            "community-controlled organisation is on the team; offer a culturally safe service"
        )
    unacknowledged = [m.agency_id for m in case.team.members if m.confidentiality_acknowledged_on is None]
    if unacknowledged:
        found.append(
            "Confidentiality not yet acknowledged by: " + ", ".join(unacknowledged) + "; nothing is released to them until it is"
        )
    for role, words in (
        (SubjectRole.ADULT_VICTIM_SURVIVOR, "the victim survivor"),
        (SubjectRole.PERSON_USING_VIOLENCE, "the person using violence"),
    ):
        if case.people_with_role(role) and not case.notice_for(role):
            found.append(f"Not yet recorded whether {words} was informed of the coordination")
    return found
