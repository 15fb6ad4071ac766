"""A safety-plan action <-> Task: owner (who) and restriction.period.end (by when) are required,
feedback travels as outputs."""

from gateway.domain.safety_plan import ActionFeedback, ActionStatus, SafetyPlanAction
from gateway.domain.vocabulary import StrategyArea, TaskParameter, TaskType, YesNoUnknown
from gateway.mappings.common import concept, fhir_date, parse_date, profile_url, read_code, reference, reference_id

PROFILE = profile_url("fv-safety-action")


def to_fhir(action: SafetyPlanAction, case_id: str, victim_survivor_id: str) -> dict:
    task = {
        "resourceType": "Task",
        "id": action.id,
        "meta": {"profile": [PROFILE]},
        "status": action.status.value,
        "intent": "plan",
        "code": concept(TaskType.SAFETY_ACTION),
        "description": action.description,
        "focus": reference("EpisodeOfCare", case_id),
        "for": reference("Patient", victim_survivor_id),
        "owner": reference("Organization", action.responsible_agency_id),
        "reasonCode": concept(action.area),
        "restriction": {"period": {"end": fhir_date(action.due)}},
    }
    outputs = [item for feedback in action.feedback for item in _feedback_outputs(feedback)]
    if outputs:
        task["output"] = outputs
    return task


def _feedback_outputs(feedback: ActionFeedback) -> list[dict]:
    parts = [
        (TaskParameter.FEEDBACK_RECORDED_ON, {"valueDate": fhir_date(feedback.recorded_on)}),
        (TaskParameter.FEEDBACK_DONE, {"valueBoolean": feedback.done}),
        (TaskParameter.FEEDBACK_SAFETY_IMPROVED, {"valueCodeableConcept": concept(feedback.safety_improved)}),
    ]
    if feedback.further_information:
        parts.append((TaskParameter.FEEDBACK_FURTHER_INFORMATION, {"valueString": feedback.further_information}))
    return [{"type": concept(kind), **value} for kind, value in parts]


def from_fhir(task: dict) -> SafetyPlanAction:
    return SafetyPlanAction(
        id=task["id"],
        description=task["description"],
        responsible_agency_id=reference_id(task.get("owner"), "Organization"),
        due=parse_date(task.get("restriction", {}).get("period", {}).get("end")),
        area=read_code(task["reasonCode"], StrategyArea),
        status=ActionStatus(task["status"]),
        feedback=_feedback(task.get("output", [])),
    )


def _feedback(outputs: list[dict]) -> list[ActionFeedback]:
    """Outputs come in order, each feedback starting with its recorded-on date."""
    groups: list[dict] = []
    for item in outputs:
        kind = read_code(item["type"], TaskParameter)
        if kind is TaskParameter.FEEDBACK_RECORDED_ON:
            groups.append({"recorded_on": parse_date(item["valueDate"])})
        elif kind is TaskParameter.FEEDBACK_DONE:
            groups[-1]["done"] = item["valueBoolean"]
        elif kind is TaskParameter.FEEDBACK_SAFETY_IMPROVED:
            groups[-1]["safety_improved"] = read_code(item["valueCodeableConcept"], YesNoUnknown)
        elif kind is TaskParameter.FEEDBACK_FURTHER_INFORMATION:
            groups[-1]["further_information"] = item["valueString"]
    return [ActionFeedback(**g) for g in groups]
