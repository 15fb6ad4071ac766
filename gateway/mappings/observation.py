"""Risk and protective factors <-> Observation (coded where the list has it, presence, detail)."""

from gateway.domain.risk import FactorObservation
from gateway.domain.vocabulary import FactorDetail, FactorPresence, ProtectiveFactor, RiskFactor
from gateway.mappings.common import concept, fhir_date, parse_date, profile_url, read_code, reference

PROFILE = profile_url("fv-factor")
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"


def to_fhir(factor: FactorObservation, observation_id: str, subject_id: str, on) -> dict:
    code = factor.risk_factor or factor.protective_factor
    components = [
        {"code": concept(detail), "valueString": value}
        for detail, value in ((FactorDetail.FREQUENCY, factor.frequency), (FactorDetail.SEVERITY, factor.severity))
        if value
    ]
    resource = {
        "resourceType": "Observation",
        "id": observation_id,
        "meta": {"profile": [PROFILE]},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "social-history"}]}],
        "code": concept(code, text=factor.text) if code else {"text": factor.text},
        "subject": reference("Patient", subject_id),
        "effectiveDateTime": fhir_date(on),
        "valueCodeableConcept": concept(factor.presence),
    }
    if components:
        resource["component"] = components
    return resource


def from_fhir(resource: dict) -> FactorObservation:
    details = {read_code(c["code"], FactorDetail): c["valueString"] for c in resource.get("component", [])}
    return FactorObservation(
        text=resource["code"]["text"],
        risk_factor=read_code(resource["code"], RiskFactor),
        protective_factor=read_code(resource["code"], ProtectiveFactor),
        presence=read_code(resource["valueCodeableConcept"], FactorPresence),
        frequency=details.get(FactorDetail.FREQUENCY),
        severity=details.get(FactorDetail.SEVERITY),
    )


def effective_date(resource: dict):
    return parse_date(resource["effectiveDateTime"])
