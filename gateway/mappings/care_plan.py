"""The safety plan <-> CarePlan whose activities reference the action Tasks."""

from gateway.mappings.common import profile_url, reference, reference_id

PROFILE = profile_url("fv-safety-plan")


def to_fhir(case_id: str, victim_survivor_id: str, action_ids: list[str]) -> dict:
    plan = {
        "resourceType": "CarePlan",
        "id": f"{case_id}-safety-plan",
        "meta": {"profile": [PROFILE]},
        "status": "active",
        "intent": "plan",
        "title": "Multi-agency safety plan",
        "subject": reference("Patient", victim_survivor_id),
        "careTeam": [reference("CareTeam", f"{case_id}-team")],
        "supportingInfo": [reference("EpisodeOfCare", case_id)],
    }
    if action_ids:
        plan["activity"] = [{"reference": reference("Task", a)} for a in action_ids]
    return plan


def from_fhir(resource: dict) -> list[str]:
    """The plan's action ids, in order."""
    return [reference_id(a["reference"], "Task") for a in resource.get("activity", [])]
