"""The multi-agency safety plan: actions with who and by when (MACM step 6), and feedback (step 7)."""

from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from gateway.domain.vocabulary import StrategyArea, YesNoUnknown
from gateway.errors import BusinessRuleViolation


class ActionStatus(str, Enum):  # FHIR task-status codes, so the Task carries them as they are
    PLANNED = "requested"
    IN_PROGRESS = "in-progress"
    DONE = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ActionFeedback:
    recorded_on: date
    done: bool
    safety_improved: YesNoUnknown
    further_information: str = ""


@dataclass
class SafetyPlanAction:
    id: str
    description: str
    responsible_agency_id: str | None
    due: date | None
    area: StrategyArea = StrategyArea.OTHER
    status: ActionStatus = ActionStatus.PLANNED
    feedback: list[ActionFeedback] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.responsible_agency_id:
            raise BusinessRuleViolation.at(
                "responsible_agency", f"Safety-plan action '{self.description}' needs the agency responsible for it (who)"
            )
        if self.due is None:
            raise BusinessRuleViolation.at("due", f"Safety-plan action '{self.description}' needs a timeframe (by when)")

    @property
    def is_open(self) -> bool:
        return self.status in (ActionStatus.PLANNED, ActionStatus.IN_PROGRESS)

    def is_overdue(self, today: date) -> bool:
        return self.is_open and self.due < today

    def record_feedback(self, feedback: ActionFeedback) -> None:
        self.feedback.append(feedback)
        self.status = ActionStatus.DONE if feedback.done else self.status

    def fail(self, feedback: ActionFeedback) -> None:
        self.feedback.append(feedback)
        self.status = ActionStatus.FAILED
