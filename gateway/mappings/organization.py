"""Agency <-> Organization (type, jurisdiction, prescribed status under the sharing law)."""

from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import AgencyType, Jurisdiction, PrescribedStatus
from gateway.mappings.common import coding, concept, ext, ext_value, ext_values, profile_url, read_code

PROFILE = profile_url("fv-agency")


def to_fhir(agency: Agency) -> dict:
    extensions = [ext("jurisdiction", valueCoding=coding(agency.jurisdiction))]
    extensions += [ext("prescribed-status", valueCoding=coding(s)) for s in sorted(agency.prescribed)]
    return {
        "resourceType": "Organization",
        "id": agency.id,
        "meta": {"profile": [PROFILE]},
        "extension": extensions,
        "active": True,
        "type": [concept(agency.type)],
        "name": agency.name,
    }


def from_fhir(resource: dict) -> Agency:
    return Agency(
        id=resource["id"],
        name=resource["name"],
        type=read_code(resource["type"][0], AgencyType),
        jurisdiction=read_code(ext_value(resource, "jurisdiction"), Jurisdiction),
        prescribed=frozenset(read_code(c, PrescribedStatus) for c in ext_values(resource, "prescribed-status")),
    )
