"""The case itself <-> EpisodeOfCare: status, lead agency, team, and the referral's particulars."""

from dataclasses import dataclass
from datetime import date

from gateway.domain.case import CaseStatus, MultiAgencyCase
from gateway.domain.vocabulary import ConsentStatus, Jurisdiction, SubjectRole
from gateway.mappings.common import (
    coding,
    ext,
    ext_value,
    ext_values,
    fhir_date,
    parse_date,
    profile_url,
    read_code,
    reference,
    reference_id,
)

PROFILE = profile_url("fv-case")


@dataclass(frozen=True)
class CaseRecord:
    """What the EpisodeOfCare says about a case (the rest lives in its other resources)."""

    id: str
    status: CaseStatus
    jurisdiction: Jurisdiction
    victim_survivor_id: str
    lead_agency_id: str
    referral_date: date
    referring_agency_id: str
    referral_contact: str
    referral_consent: ConsentStatus
    people_ids: tuple[str, ...] = ()  # every person the case is about (each a Patient)
    closure_date: date | None = None

    @classmethod
    def of(cls, case: MultiAgencyCase) -> "CaseRecord":
        victim = (case.people_with_role(SubjectRole.ADULT_VICTIM_SURVIVOR) or case.people_with_role(SubjectRole.CHILD_VICTIM_SURVIVOR))[0]
        return cls(
            case.id,
            case.status,
            case.jurisdiction,
            victim.id,
            case.team.lead_agency(),
            case.referral.referral_date,
            case.referral.referring_agency_id,
            case.referral.referral_contact,
            case.referral.consent_status,
            tuple(p.id for p in case.people),
            case.closure.closure_date if case.closure else None,
        )


def to_fhir(record: CaseRecord) -> dict:
    period = {"start": fhir_date(record.referral_date)}
    if record.closure_date:
        period["end"] = fhir_date(record.closure_date)
    return {
        "resourceType": "EpisodeOfCare",
        "id": record.id,
        "meta": {"profile": [PROFILE]},
        "extension": [
            ext("jurisdiction", valueCoding=coding(record.jurisdiction)),
            ext("referring-agency", valueReference=reference("Organization", record.referring_agency_id)),
            ext("referral-contact", valueString=record.referral_contact),
            ext("referral-consent-status", valueCoding=coding(record.referral_consent)),
            *(ext("case-subject", valueReference=reference("Patient", pid)) for pid in record.people_ids),
        ],
        "status": record.status.value,
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "225346004", "display": "Case management"}], "text": "Multi-agency family violence case"}],
        "patient": reference("Patient", record.victim_survivor_id),
        "managingOrganization": reference("Organization", record.lead_agency_id),
        "period": period,
        "team": [reference("CareTeam", f"{record.id}-team")],
    }


def from_fhir(resource: dict) -> CaseRecord:
    return CaseRecord(
        id=resource["id"],
        status=CaseStatus(resource["status"]),
        jurisdiction=read_code(ext_value(resource, "jurisdiction"), Jurisdiction),
        victim_survivor_id=reference_id(resource["patient"], "Patient"),
        lead_agency_id=reference_id(resource["managingOrganization"], "Organization"),
        referral_date=parse_date(resource["period"]["start"]),
        referring_agency_id=reference_id(ext_value(resource, "referring-agency"), "Organization"),
        referral_contact=ext_value(resource, "referral-contact"),
        referral_consent=read_code(ext_value(resource, "referral-consent-status"), ConsentStatus),
        people_ids=tuple(reference_id(r, "Patient") for r in ext_values(resource, "case-subject")),
        closure_date=parse_date(resource["period"].get("end")),
    )
