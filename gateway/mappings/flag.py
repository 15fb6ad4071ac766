"""A red flag (risk rose, order breached, release from custody, action failed) <-> Flag."""

from gateway.domain.events import RedFlagRaised
from gateway.domain.vocabulary import FlagType
from gateway.mappings.common import concept, ext, ext_value, fhir_date, parse_date, profile_url, read_code, reference, reference_id

PROFILE = profile_url("fv-red-flag")


def to_fhir(flag: RedFlagRaised, flag_id: str, subject_id: str, raised_by: str) -> dict:
    return {
        "resourceType": "Flag",
        "id": flag_id,
        "meta": {"profile": [PROFILE]},
        "extension": [ext("case", valueReference=reference("EpisodeOfCare", flag.case_id))],
        "status": "active",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "safety"}]}],
        "code": concept(flag.flag, text=flag.description),
        "subject": reference("Patient", subject_id),
        "period": {"start": fhir_date(flag.on)},
        "author": reference("Organization", raised_by),
    }


def from_fhir(resource: dict) -> RedFlagRaised:
    return RedFlagRaised(
        case_id=reference_id(ext_value(resource, "case"), "EpisodeOfCare"),
        flag=read_code(resource["code"], FlagType),
        on=parse_date(resource["period"]["start"]),
        description=resource["code"]["text"],
    )
