"""A consent record <-> Consent: who it is about, its status under the scheme, to whom it extends,
why it was not sought, and whether the person's views were sought."""

from gateway.domain.consent import ConsentRecord
from gateway.domain.vocabulary import ConsentStatus, Jurisdiction
from gateway.mappings.common import coding, concept, ext, ext_value, fhir_date, parse_date, profile_url, read_code, reference, reference_id

PROFILE = profile_url("fv-consent")
_FHIR_STATUS = {
    ConsentStatus.GIVEN: "active",
    ConsentStatus.REFUSED: "rejected",
    ConsentStatus.WITHDRAWN: "inactive",
    ConsentStatus.NOT_SOUGHT: "proposed",
    ConsentStatus.UNSAFE_TO_SEEK: "proposed",
}
_RECIPIENT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}


def to_fhir(record: ConsentRecord) -> dict:
    extensions = [ext("consent-status", valueCoding=coding(record.status)), ext("views-sought", valueBoolean=record.views_sought)]
    if record.reason:
        extensions.append(ext("consent-not-sought-reason", valueString=record.reason))
    if record.views:
        extensions.append(ext("views", valueString=record.views))
    provision = {"type": "permit" if record.status is ConsentStatus.GIVEN else "deny"}
    if record.recipients:
        provision["actor"] = [{"role": _RECIPIENT, "reference": reference("Organization", a)} for a in record.recipients]
    return {
        "resourceType": "Consent",
        "id": record.id,
        "meta": {"profile": [PROFILE]},
        "extension": extensions,
        "status": _FHIR_STATUS[record.status],
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": reference("Patient", record.subject_id),
        "dateTime": fhir_date(record.recorded_on),
        "policyRule": concept(record.scheme),
        "provision": provision,
    }


def from_fhir(resource: dict) -> ConsentRecord:
    actors = resource.get("provision", {}).get("actor", [])
    return ConsentRecord(
        id=resource["id"],
        subject_id=reference_id(resource["patient"], "Patient"),
        status=read_code(ext_value(resource, "consent-status"), ConsentStatus),
        recorded_on=parse_date(resource["dateTime"]),
        scheme=read_code(resource["policyRule"], Jurisdiction),
        recipients=tuple(reference_id(a["reference"], "Organization") for a in actors),
        reason=ext_value(resource, "consent-not-sought-reason"),
        views_sought=ext_value(resource, "views-sought", False),
        views=ext_value(resource, "views"),
    )
