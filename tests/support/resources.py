"""Small valid R4B resources for tests; each builder takes the fields a test varies."""

from fhir.resources.R4B import get_fhir_model_class

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def fhir_resources_accepts(data: dict) -> bool:
    """fhir.resources' own verdict on `data`, the authority the gateway's compiled check answers to."""
    try:
        get_fhir_model_class(data["resourceType"]).model_validate(data)
    except Exception:  # fhir.resources raises more than ValidationError for some shapes
        return False
    return True


def patient(family="Nguyen", given="Mai", identifier="VP-1", birth_date="1987-04-12", system="urn:vic-police:person"):
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": identifier}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth_date,
    }


def rfi_task(subject="Patient/p1", owner="Organization/health", requester="Organization/police",
             focus="EpisodeOfCare/case1", status="requested", code="rfi", start="2026-11-20T09:00:00Z"):
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": "urn:gateway:task-type", "code": code}]},
        "for": {"reference": subject},
        "focus": {"reference": focus},
        "owner": {"reference": owner},
        "requester": {"reference": requester},
        "executionPeriod": {"start": start},
        "authoredOn": start,
        "restriction": {"period": {"end": "2026-11-27T09:00:00Z"}},
    }


def risk_assessment(subject="Patient/p1", date="2026-11-20", risk="high"):
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": subject},
        "occurrenceDateTime": date,
        "prediction": [{"qualitativeRisk": {"coding": [{"system": "urn:gateway:risk-level", "code": risk}]}}],
    }
