"""A risk level as determined by someone on a date <-> RiskAssessment (+ its factor Observations)."""

from gateway.domain.risk import RiskDetermination
from gateway.domain.vocabulary import RiskDeterminedBy, RiskLevel
from gateway.mappings import observation
from gateway.mappings.common import concept, fhir_date, parse_date, profile_url, read_code, reference

PROFILE = profile_url("fv-risk-assessment")


def to_fhir(determination: RiskDetermination, assessment_id: str, subject_id: str, case_id: str) -> list[dict]:
    """The RiskAssessment first, then one Observation per factor it rests on."""
    factor_ids = [f"{assessment_id}-f{i}" for i in range(len(determination.factors))]
    assessment = {
        "resourceType": "RiskAssessment",
        "id": assessment_id,
        "meta": {"profile": [PROFILE]},
        "status": "final",
        "method": concept(determination.determined_by),
        "subject": reference("Patient", subject_id),
        "occurrenceDateTime": fhir_date(determination.on),
        "basis": [reference("EpisodeOfCare", case_id)] + [reference("Observation", fid) for fid in factor_ids],
        "prediction": [{"qualitativeRisk": concept(determination.level)}],
    }
    if determination.rationale:
        assessment["note"] = [{"text": determination.rationale}]
    factors = [observation.to_fhir(f, fid, subject_id, determination.on) for f, fid in zip(determination.factors, factor_ids)]
    return [assessment, *factors]


def from_fhir(assessment: dict, observations: dict[str, dict]) -> RiskDetermination:
    """`observations` holds the factor Observations by id (the basis the assessment names)."""
    basis = [b["reference"].split("/", 1)[1] for b in assessment.get("basis", []) if b["reference"].startswith("Observation/")]
    return RiskDetermination(
        level=read_code(assessment["prediction"][0]["qualitativeRisk"], RiskLevel),
        determined_by=read_code(assessment["method"], RiskDeterminedBy),
        on=parse_date(assessment["occurrenceDateTime"]),
        rationale=assessment["note"][0]["text"] if assessment.get("note") else "",
        factors=tuple(observation.from_fhir(observations[b]) for b in basis),
    )
