"""The resource types the gateway stores and the search parameters it supports on each.

This table is the single source of truth: the index extractor, the search parser and the
CapabilityStatement all read it, so /fhir/metadata lists exactly what works.
Paths are element names in the JSON form; `[x]` choices are listed as each concrete name.
"""

from dataclasses import dataclass

TOKEN, STRING, REFERENCE, DATE, URI = "token", "string", "reference", "date", "uri"


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str
    paths: tuple[tuple[str, ...], ...]
    targets: tuple[str, ...] = ()  # reference parameters: the resource types it may point at
    documentation: str = ""
    index_name: str = ""  # parameters over the same elements share index rows (Task for/subject/patient)


def _p(name: str, type_: str, *paths: str, targets: tuple[str, ...] = (), doc: str = "") -> SearchParameter:
    return SearchParameter(name, type_, tuple(tuple(p.split(".")) for p in paths), targets, doc)


# Parameters every type has. `_id` and `_lastUpdated` are answered from the resource table
# itself; the meta labels are indexed so the consent engine and agencies can filter by them.
COMMON = (
    _p("_id", TOKEN, doc="logical id"),
    _p("_lastUpdated", DATE, doc="when the current version was written"),
    _p("_security", TOKEN, "meta.security", doc="security labels (information category, subject role)"),
    _p("_tag", TOKEN, "meta.tag"),
    _p("_profile", URI, "meta.profile"),
)
RESULT_PARAMETERS = ("_count", "_offset", "_sort", "_total", "_format")

SUBJECT = ("Patient", "Group")
ACTOR = ("Organization", "Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "CareTeam", "Device")


def _subject_params(path: str) -> tuple[SearchParameter, ...]:
    return (
        _p("subject", REFERENCE, path, targets=SUBJECT),
        _p("patient", REFERENCE, path, targets=("Patient",)),
    )


def _conformance(*extra: SearchParameter) -> tuple[SearchParameter, ...]:
    return (
        _p("url", URI, "url"),
        _p("version", TOKEN, "version"),
        _p("name", STRING, "name"),
        _p("title", STRING, "title"),
        _p("status", TOKEN, "status"),
        *extra,
    )


RESOURCE_PARAMETERS: dict[str, tuple[SearchParameter, ...]] = {
    "Patient": (
        _p("identifier", TOKEN, "identifier"),
        _p("name", STRING, "name"),
        _p("family", STRING, "name.family"),
        _p("given", STRING, "name.given"),
        _p("birthdate", DATE, "birthDate"),
        _p("gender", TOKEN, "gender"),
    ),
    "Organization": (
        _p("identifier", TOKEN, "identifier"),
        _p("name", STRING, "name", "alias"),
        _p("type", TOKEN, "type"),
        _p("active", TOKEN, "active"),
        _p("partof", REFERENCE, "partOf", targets=("Organization",)),
    ),
    "Practitioner": (
        _p("identifier", TOKEN, "identifier"),
        _p("name", STRING, "name"),
    ),
    "PractitionerRole": (
        _p("identifier", TOKEN, "identifier"),
        _p("organization", REFERENCE, "organization", targets=("Organization",)),
        _p("practitioner", REFERENCE, "practitioner", targets=("Practitioner",)),
        _p("role", TOKEN, "code"),
    ),
    "Task": (
        _p("identifier", TOKEN, "identifier"),
        _p("owner", REFERENCE, "owner", targets=ACTOR),
        _p("requester", REFERENCE, "requester", targets=ACTOR),
        _p("status", TOKEN, "status"),
        _p("business-status", TOKEN, "businessStatus"),
        _p("intent", TOKEN, "intent"),
        _p("priority", TOKEN, "priority"),
        _p("focus", REFERENCE, "focus", targets=()),
        _p("for", REFERENCE, "for", targets=SUBJECT, doc="who the task is for (Task.for)"),
        *_subject_params("for"),
        _p("code", TOKEN, "code"),
        _p("period", DATE, "executionPeriod"),
        _p("authored-on", DATE, "authoredOn"),
        _p("modified", DATE, "lastModified"),
        _p("part-of", REFERENCE, "partOf", targets=("Task",)),
    ),
    "RiskAssessment": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("date", DATE, "occurrenceDateTime", "occurrencePeriod"),
        _p("method", TOKEN, "method"),
        _p("risk", TOKEN, "prediction.qualitativeRisk"),
        _p("performer", REFERENCE, "performer", targets=ACTOR),
    ),
    "Observation": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        _p("status", TOKEN, "status"),
        _p("date", DATE, "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        _p("value-concept", TOKEN, "valueCodeableConcept"),
        _p("derived-from", REFERENCE, "derivedFrom", targets=("QuestionnaireResponse", "Observation")),
    ),
    "CareTeam": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("participant", REFERENCE, "participant.member", targets=ACTOR),
        _p("status", TOKEN, "status"),
        _p("category", TOKEN, "category"),
        _p("date", DATE, "period"),
    ),
    "CarePlan": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("status", TOKEN, "status"),
        _p("intent", TOKEN, "intent"),
        _p("category", TOKEN, "category"),
        _p("date", DATE, "period"),
        _p("care-team", REFERENCE, "careTeam", targets=("CareTeam",)),
        _p("activity-reference", REFERENCE, "activity.reference", targets=("Task",)),
    ),
    "Consent": (
        _p("identifier", TOKEN, "identifier"),
        _p("patient", REFERENCE, "patient", targets=("Patient",)),
        _p("status", TOKEN, "status"),
        _p("scope", TOKEN, "scope"),
        _p("category", TOKEN, "category"),
        _p("date", DATE, "dateTime"),
        _p("actor", REFERENCE, "provision.actor.reference", targets=ACTOR),
        _p("purpose", TOKEN, "provision.purpose"),
        _p("security-label", TOKEN, "provision.securityLabel"),
        _p("period", DATE, "provision.period"),
    ),
    "EpisodeOfCare": (
        _p("identifier", TOKEN, "identifier"),
        _p("patient", REFERENCE, "patient", targets=("Patient",)),
        _p("status", TOKEN, "status"),
        _p("organization", REFERENCE, "managingOrganization", targets=("Organization",)),
        _p("type", TOKEN, "type"),
        _p("date", DATE, "period"),
        _p("care-manager", REFERENCE, "careManager", targets=("Practitioner",)),
    ),
    "Flag": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("status", TOKEN, "status"),
        _p("category", TOKEN, "category"),
        _p("code", TOKEN, "code"),
        _p("date", DATE, "period"),
        _p("author", REFERENCE, "author", targets=ACTOR),
    ),
    "AuditEvent": (
        _p("agent", REFERENCE, "agent.who", targets=ACTOR),
        _p("entity", REFERENCE, "entity.what", targets=()),
        _p("date", DATE, "recorded"),
        _p("outcome", TOKEN, "outcome"),
        _p("type", TOKEN, "type"),
        _p("subtype", TOKEN, "subtype"),
        _p("action", TOKEN, "action"),
        _p("source", REFERENCE, "source.observer", targets=ACTOR),
    ),
    "Provenance": (
        _p("target", REFERENCE, "target", targets=()),
        _p("agent", REFERENCE, "agent.who", targets=ACTOR),
        _p("recorded", DATE, "recorded"),
    ),
    "QuestionnaireResponse": (
        _p("identifier", TOKEN, "identifier"),
        *_subject_params("subject"),
        _p("questionnaire", URI, "questionnaire"),
        _p("status", TOKEN, "status"),
        _p("authored", DATE, "authored"),
        _p("author", REFERENCE, "author", targets=ACTOR),
    ),
    "Questionnaire": _conformance(),
    "CodeSystem": _conformance(),
    "ValueSet": _conformance(),
    "StructureDefinition": _conformance(_p("type", URI, "type")),
    "SubscriptionTopic": (_p("url", URI, "url"), _p("status", TOKEN, "status"), _p("title", STRING, "title")),
    "Subscription": (_p("status", TOKEN, "status"), _p("type", TOKEN, "channel.type"), _p("criteria", STRING, "criteria")),
}

def _with_index_names(params: tuple[SearchParameter, ...]) -> tuple[SearchParameter, ...]:
    first: dict[tuple, str] = {}
    named = []
    for p in params:
        owner = first.setdefault((p.type, p.paths), p.name)
        named.append(SearchParameter(p.name, p.type, p.paths, p.targets, p.documentation, owner))
    return tuple(named)


_ALL = {t: _with_index_names(COMMON + params) for t, params in RESOURCE_PARAMETERS.items()}
SUPPORTED_TYPES = frozenset(RESOURCE_PARAMETERS)
_BY_TYPE = {t: {p.name: p for p in params} for t, params in _ALL.items()}
_INDEXED = {t: tuple(p for p in params if p.paths and p.index_name == p.name) for t, params in _ALL.items()}


def parameters_for(resource_type: str) -> dict[str, SearchParameter]:
    return _BY_TYPE[resource_type]


def indexed_parameters(resource_type: str) -> tuple[SearchParameter, ...]:
    """The parameters whose values are written to the search index, one per set of elements."""
    return _INDEXED[resource_type]
