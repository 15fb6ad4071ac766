"""Person (victim survivor, child, person using violence, third party) <-> Patient."""

from gateway.domain.people import Person
from gateway.domain.vocabulary import IndigenousStatus, SubjectRole
from gateway.mappings.common import coding, ext, ext_value, fhir_date, parse_date, profile_url, read_code, without_none

PROFILE = profile_url("fv-person")


def to_fhir(person: Person) -> dict:
    extensions = [ext("subject-role", valueCoding=coding(person.role))]
    if person.indigenous_status:
        extensions.append(ext("indigenous-status", valueCoding=coding(person.indigenous_status)))
    if person.cultural_identity:
        extensions.append(ext("cultural-identity", valueString=person.cultural_identity))
    if person.age is not None:
        extensions.append(ext("age", valueAge={"value": person.age, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}))
    return without_none(
        {
            "resourceType": "Patient",
            "id": person.id,
            # the role is a security label too: the consent engine reads labels, not free text
            "meta": {"profile": [PROFILE], "security": [coding(person.role)]},
            "extension": extensions,
            "name": [{"text": person.name}],
            "birthDate": fhir_date(person.birth_date),
            "address": [{"text": person.address}] if person.address else None,
        }
    )


def role_of(resource: dict) -> SubjectRole:
    """The person's role on the case; one the record does not state counts as a third party's,
    whose information the schemes guard most closely."""
    try:
        return read_code(ext_value(resource, "subject-role"), SubjectRole) or SubjectRole.THIRD_PARTY
    except (ValueError, TypeError, KeyError):
        return SubjectRole.THIRD_PARTY


def from_fhir(resource: dict) -> Person:
    age = ext_value(resource, "age")
    status = ext_value(resource, "indigenous-status")
    return Person(
        id=resource["id"],
        role=read_code(ext_value(resource, "subject-role"), SubjectRole),
        name=resource["name"][0]["text"],
        birth_date=parse_date(resource.get("birthDate")),
        age=int(age["value"]) if age else None,
        address=resource["address"][0]["text"] if resource.get("address") else None,
        indigenous_status=read_code(status, IndigenousStatus) if status else None,
        cultural_identity=ext_value(resource, "cultural-identity"),
    )
