"""The gateway's profiles and extensions as data.

tools/build_profiles.py turns these into profiles/StructureDefinition-<name>.json: one profile per
kind of resource the mappings in gateway/mappings/ emit (each names it in `meta.profile`), and one
extension definition per `ext("<name>", ...)` they use.

The gateway interprets these StructureDefinitions itself when it validates incoming resources, so
they use a deliberately small part of FHIR profiling, and nothing else:

- `kind: resource`, `derivation: constraint`, `baseDefinition` the core resource;
- differential elements on plain element paths (`Task.restriction.period.end`; a choice element
  is named as in the base, `RiskAssessment.occurrence[x]`) with only `min`, `max` ("0" forbids),
  `fixedCode` (code elements), `patternCodeableConcept` / `patternCoding` (one coding, system and
  code) and `binding` (strength `required`, a ValueSet in profiles/);
- extension slices (`Patient.extension:subjectRole`, `sliceName`, `min`, `max` and
  `type: [{"code": "Extension", "profile": [<extension url>]}]`) under the base element's usual
  slicing (discriminator value on `url`, rules open);
- extension definitions: `kind: complex-type`, `type: Extension`, a `context`, and a differential
  that forbids nested extensions, fixes `Extension.url` and constrains `Extension.value[x]` (type,
  min 1, binding where coded).

`Rule` and `Slice` entries may be listed in any order: the builder sorts the differential into the
order of the base resource (HAPI ignores elements that are out of order) and rejects paths the base
resource does not have, ValueSets that are not in profiles/, extensions that are not defined here,
and extensions used where their `context` does not allow them.

A profile says what the mapping guarantees and what the domain rules need to read a resource back
(`from_fhir`); what these features cannot say (one lead agency per team, a reason when consent was
not sought, the type of a choice element or a reference target) is left to the domain.
"""

from dataclasses import dataclass

from gateway.domain.vocabulary import Coded, TaskType

# ValueSet ids (profiles/ValueSet-<id>.json).
VS_AGENCY_TYPE = "agency-type"
VS_CONSENT_STATUS = "consent-status"
VS_EXCLUDED_INFORMATION = "excluded-information"
VS_FACTOR_DETAIL = "factor-detail"
VS_FACTOR_PRESENCE = "factor-presence"
VS_INDIGENOUS_STATUS = "indigenous-status"
VS_INFORMATION_CATEGORY = "information-category"
VS_JURISDICTION = "jurisdiction"
VS_PRESCRIBED_STATUS = "prescribed-status"
VS_RED_FLAG = "red-flag"
VS_RISK_DETERMINED_BY = "risk-determined-by"
VS_RISK_LEVEL = "risk-level"
VS_STRATEGY_AREA = "strategy-area"
VS_SUBJECT_ROLE = "subject-role"
VS_TASK_PARAMETER = "task-parameter"
VS_TEAM_ROLE = "team-role"
VS_WITHHELD_REASON = "withheld-reason"


@dataclass(frozen=True)
class ExtensionDefinition:
    """A simple extension: one `value[x]` of one type, no nested extensions.

    `contexts` are the resources or elements it may sit on (FHIRPath of an element, e.g.
    "CareTeam.participant"); `value_set` (a ValueSet id) binds a coded value (required);
    `target` is the resource a Reference value points at.
    """

    name: str
    title: str
    description: str
    contexts: tuple[str, ...]
    value_type: str
    value_set: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Rule:
    """Constraints on one element of the base resource, by its path."""

    path: str
    min: int | None = None
    max: str | None = None
    fixed_code: str | None = None
    pattern_concept: Coded | None = None  # patternCodeableConcept with this one coding
    pattern_coding: Coded | None = None  # patternCoding
    value_set: str | None = None  # binding, strength required


@dataclass(frozen=True)
class Slice:
    """An extension slice: `extension` (a name in EXTENSIONS) on `on` (the resource or an element
    path, e.g. "Task.output"), `min`..`max` times."""

    on: str
    extension: str
    min: int = 0
    max: str = "1"


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    description: str
    type: str
    rules: tuple[Rule | Slice, ...]


# --- Extensions ----------------------------------------------------------------------------------

EXTENSIONS: tuple[ExtensionDefinition, ...] = (
    ExtensionDefinition(
        "subject-role",
        "Role of a person in a case",
        "Who the person is in the case: adult or child victim survivor, person using violence, third party.",
        ("Patient",),
        "Coding",
        value_set=VS_SUBJECT_ROLE,
    ),
    ExtensionDefinition(
        "indigenous-status",
        "Aboriginal and Torres Strait Islander status",
        "The person's Aboriginal and/or Torres Strait Islander status, as they stated it.",
        ("Patient",),
        "Coding",
        value_set=VS_INDIGENOUS_STATUS,
    ),
    ExtensionDefinition(
        "cultural-identity",
        "Cultural identity",
        "The person's diverse cultural identity, in their own words.",
        ("Patient",),
        "string",
    ),
    ExtensionDefinition(
        "age",
        "Age",
        "The person's age in years where no birth date is known (the 3A tool asks for children's ages).",
        ("Patient",),
        "Age",
    ),
    ExtensionDefinition(
        "jurisdiction",
        "Jurisdiction",
        "The jurisdiction whose information-sharing law applies: to an agency, or to a case.",
        ("Organization", "EpisodeOfCare"),
        "Coding",
        value_set=VS_JURISDICTION,
    ),
    ExtensionDefinition(
        "prescribed-status",
        "Prescribed status",
        "A status the agency is prescribed with under an information-sharing scheme (one extension per status).",
        ("Organization",),
        "Coding",
        value_set=VS_PRESCRIBED_STATUS,
    ),
    ExtensionDefinition(
        "representative",
        "Representative",
        "The person who represents the agency on the multi-agency team.",
        ("CareTeam.participant",),
        "string",
    ),
    ExtensionDefinition(
        "confidentiality-acknowledged",
        "Confidentiality acknowledged on",
        "When the agency's representative signed or verbally endorsed the confidentiality agreement (MACM step 4).",
        ("CareTeam.participant",),
        "date",
    ),
    ExtensionDefinition(
        "referring-agency",
        "Referring agency",
        "The agency that referred the case to the multi-agency response.",
        ("EpisodeOfCare",),
        "Reference",
        target="Organization",
    ),
    ExtensionDefinition(
        "referral-contact",
        "Referral contact",
        "Who to contact at the referring agency about the referral.",
        ("EpisodeOfCare",),
        "string",
    ),
    ExtensionDefinition(
        "referral-consent-status",
        "Consent status at referral",
        "The victim survivor's consent to the referral.",
        ("EpisodeOfCare",),
        "Coding",
        value_set=VS_CONSENT_STATUS,
    ),
    ExtensionDefinition(
        "case-subject",
        "Person the case is about",
        "A person the case is about (victim survivor, child, person using violence, third party): one extension "
        "per person.",
        ("EpisodeOfCare",),
        "Reference",
        target="Patient",
    ),
    ExtensionDefinition(
        "response-subject",
        "Subject of a response",
        "The person an item of information given in answer to a request for information is about.",
        ("Task.output",),
        "Reference",
        target="Patient",
    ),
    ExtensionDefinition(
        "recorded-on",
        "Recorded on",
        "When an item of information given in answer to a request for information was recorded.",
        ("Task.output",),
        "dateTime",
    ),
    ExtensionDefinition(
        "excluded-information",
        "Excluded information",
        "The holder's label on an item given in answer: it falls in an excluded-information category, so it is "
        "never released (one extension per category).",
        ("Task.output",),
        "Coding",
        value_set=VS_EXCLUDED_INFORMATION,
    ),
    ExtensionDefinition(
        "withheld-reason",
        "Why an item was withheld",
        "An item given in answer that the consent engine did not release: the class of reason, never the content.",
        ("Task.output",),
        "Coding",
        value_set=VS_WITHHELD_REASON,
    ),
    ExtensionDefinition(
        "consent-status",
        "Consent status",
        "The person's consent to share under the information-sharing scheme.",
        ("Consent",),
        "Coding",
        value_set=VS_CONSENT_STATUS,
    ),
    ExtensionDefinition(
        "views-sought",
        "Views sought",
        "Whether the person's views were sought.",
        ("Consent",),
        "boolean",
    ),
    ExtensionDefinition(
        "consent-not-sought-reason",
        "Reason consent was not sought",
        "Why consent was not sought, or was unsafe or unreasonable to seek.",
        ("Consent",),
        "string",
    ),
    ExtensionDefinition(
        "views",
        "Views",
        "The person's views on the sharing, as they gave them.",
        ("Consent",),
        "string",
    ),
    ExtensionDefinition(
        "case",
        "Case",
        "The case (EpisodeOfCare) a red flag was raised on, or a Level 3 form was filled in for.",
        ("Flag", "QuestionnaireResponse"),
        "Reference",
        target="EpisodeOfCare",
    ),
)


# --- Profiles ------------------------------------------------------------------------------------

PROFILES: tuple[Profile, ...] = (
    Profile(
        "fv-person",
        "Person in a family-violence case",
        "A person a case is about (victim survivor, child, person using violence, third party). Their role "
        "(subject-role extension) is required, once; Aboriginal and/or Torres Strait Islander status, cultural "
        "identity and age are optional, once each. A name with its text is required.",
        "Patient",
        (
            Slice("Patient", "subject-role", min=1),
            Slice("Patient", "indigenous-status"),
            Slice("Patient", "cultural-identity"),
            Slice("Patient", "age"),
            Rule("Patient.name", min=1),
            Rule("Patient.name.text", min=1),
        ),
    ),
    Profile(
        "fv-agency",
        "Agency",
        "An agency that takes part in multi-agency responses. Its type (bound to agency-type), name and "
        "jurisdiction (extension, once) are required; its prescribed statuses under the information-sharing "
        "schemes are prescribed-status extensions, any number.",
        "Organization",
        (
            Slice("Organization", "jurisdiction", min=1),
            Slice("Organization", "prescribed-status", max="*"),
            Rule("Organization.type", min=1, value_set=VS_AGENCY_TYPE),
            Rule("Organization.name", min=1),
        ),
    ),
    Profile(
        "fv-care-team",
        "Multi-agency team",
        "The multi-agency team of a case: its subject (the victim survivor) and at least one participant. Each "
        "participant is an agency (member required) with its representative (extension, required), roles "
        "bound to team-role, and the date it acknowledged confidentiality (extension, optional).",
        "CareTeam",
        (
            Rule("CareTeam.subject", min=1),
            Rule("CareTeam.participant", min=1),
            Slice("CareTeam.participant", "representative", min=1),
            Slice("CareTeam.participant", "confidentiality-acknowledged"),
            Rule("CareTeam.participant.role", value_set=VS_TEAM_ROLE),
            Rule("CareTeam.participant.member", min=1),
        ),
    ),
    Profile(
        "fv-case",
        "Multi-agency family-violence case",
        "A case: the victim survivor (patient), the lead agency (managingOrganization), the referral date "
        "(period.start) and the team are required, and so are the extensions jurisdiction, referring-agency, "
        "referral-contact and referral-consent-status, once each. The people the case is about are case-subject "
        "extensions, any number.",
        "EpisodeOfCare",
        (
            Slice("EpisodeOfCare", "jurisdiction", min=1),
            Slice("EpisodeOfCare", "referring-agency", min=1),
            Slice("EpisodeOfCare", "referral-contact", min=1),
            Slice("EpisodeOfCare", "referral-consent-status", min=1),
            Slice("EpisodeOfCare", "case-subject", max="*"),
            Rule("EpisodeOfCare.patient", min=1),
            Rule("EpisodeOfCare.managingOrganization", min=1),
            Rule("EpisodeOfCare.period", min=1),
            Rule("EpisodeOfCare.period.start", min=1),
            Rule("EpisodeOfCare.team", min=1),
        ),
    ),
    Profile(
        "fv-risk-assessment",
        "Risk level determination",
        "A risk level as determined by someone on a date: who determined it (method, bound to "
        "risk-determined-by), the subject, the date (occurrence[x]), the basis (the case, then the factor "
        "Observations) and one prediction whose qualitativeRisk is bound to risk-level are required.",
        "RiskAssessment",
        (
            Rule("RiskAssessment.method", min=1, value_set=VS_RISK_DETERMINED_BY),
            Rule("RiskAssessment.subject", min=1),
            Rule("RiskAssessment.occurrence[x]", min=1),
            Rule("RiskAssessment.basis", min=1),
            Rule("RiskAssessment.prediction", min=1),
            Rule("RiskAssessment.prediction.qualitativeRisk", min=1, value_set=VS_RISK_LEVEL),
        ),
    ),
    Profile(
        "fv-factor",
        "Risk or protective factor",
        "A risk or protective factor a risk determination rests on: a category, the factor (code, coded from "
        "risk-factor or protective-factor where the list has it, and its text, required), the subject, the date "
        "(effective[x]) and whether it is present (value[x], bound to factor-presence) are required. Details "
        "(frequency, severity) are components whose code is bound to factor-detail.",
        "Observation",
        (
            Rule("Observation.category", min=1),
            Rule("Observation.code.text", min=1),
            Rule("Observation.subject", min=1),
            Rule("Observation.effective[x]", min=1),
            Rule("Observation.value[x]", min=1, value_set=VS_FACTOR_PRESENCE),
            Rule("Observation.component.code", value_set=VS_FACTOR_DETAIL),
            Rule("Observation.component.value[x]", min=1),
        ),
    ),
    Profile(
        "fv-safety-action",
        "Safety-plan action",
        "An action of the multi-agency safety plan: code task-type#safety-action, intent plan, a description, "
        "the case (focus), the victim survivor (for), who does it (owner), its strategy area (reasonCode, "
        "bound to strategy-area) and by when (restriction.period.end) are required. Feedback travels as outputs "
        "typed by task-parameter.",
        "Task",
        (
            Rule("Task.intent", fixed_code="plan"),
            Rule("Task.code", min=1, pattern_concept=TaskType.SAFETY_ACTION),
            Rule("Task.description", min=1),
            Rule("Task.focus", min=1),
            Rule("Task.for", min=1),
            Rule("Task.owner", min=1),
            Rule("Task.reasonCode", min=1, value_set=VS_STRATEGY_AREA),
            Rule("Task.restriction", min=1),
            Rule("Task.restriction.period", min=1),
            Rule("Task.restriction.period.end", min=1),
            Rule("Task.output.type", value_set=VS_TASK_PARAMETER),
        ),
    ),
    Profile(
        "fv-safety-plan",
        "Multi-agency safety plan",
        "The safety plan of a case: intent plan, the victim survivor (subject), the team (careTeam) and the case "
        "(supportingInfo) are required; each activity is a reference to a safety-action Task (no inline detail).",
        "CarePlan",
        (
            Rule("CarePlan.intent", fixed_code="plan"),
            Rule("CarePlan.subject", min=1),
            Rule("CarePlan.careTeam", min=1),
            Rule("CarePlan.supportingInfo", min=1),
            Rule("CarePlan.activity.reference", min=1),
            Rule("CarePlan.activity.detail", max="0"),
        ),
    ),
    Profile(
        "fv-rfi",
        "Request for information",
        "A request for information between agencies: code task-type#rfi, intent order, the case (focus), the "
        "first subject (for), when it was made (authoredOn), the requesting agency (requester), the agency asked "
        "(owner), the due date and time (restriction.period.end) and its inputs (subjects, categories, purpose, "
        "question; typed by task-parameter) are required. Each output is an item of information given in answer: "
        "typed by task-parameter, its value bound to information-category, with the response-subject and "
        "recorded-on extensions, once each; a released item may carry the holder's excluded-information labels, and an "
        "item the consent engine withheld is typed 'withheld' and carries its withheld-reason instead of content.",
        "Task",
        (
            Rule("Task.intent", fixed_code="order"),
            Rule("Task.code", min=1, pattern_concept=TaskType.RFI),
            Rule("Task.focus", min=1),
            Rule("Task.for", min=1),
            Rule("Task.authoredOn", min=1),
            Rule("Task.requester", min=1),
            Rule("Task.owner", min=1),
            Rule("Task.restriction", min=1),
            Rule("Task.restriction.period", min=1),
            Rule("Task.restriction.period.end", min=1),
            Rule("Task.input", min=1),
            Rule("Task.input.type", value_set=VS_TASK_PARAMETER),
            Slice("Task.output", "response-subject", min=1),
            Slice("Task.output", "recorded-on", min=1),
            Slice("Task.output", "excluded-information", max="*"),
            Slice("Task.output", "withheld-reason"),
            Rule("Task.output.type", value_set=VS_TASK_PARAMETER),
            Rule("Task.output.value[x]", value_set=VS_INFORMATION_CATEGORY),
        ),
    ),
    Profile(
        "fv-consent",
        "Consent to share",
        "A person's consent to share information under a scheme: its status under the scheme (consent-status "
        "extension) and whether their views were sought (views-sought extension) are required, once each; the "
        "reason it was not sought and the person's views are optional extensions. The person (patient), the date "
        "(dateTime), the scheme (policyRule, bound to jurisdiction) and the provision with its type are required.",
        "Consent",
        (
            Slice("Consent", "consent-status", min=1),
            Slice("Consent", "views-sought", min=1),
            Slice("Consent", "consent-not-sought-reason"),
            Slice("Consent", "views"),
            Rule("Consent.patient", min=1),
            Rule("Consent.dateTime", min=1),
            Rule("Consent.policyRule", min=1, value_set=VS_JURISDICTION),
            Rule("Consent.provision", min=1),
            Rule("Consent.provision.type", min=1),
        ),
    ),
    Profile(
        "fv-red-flag",
        "Red flag",
        "A red flag raised on a case (risk rose, order breached, release from custody, action failed): the case "
        "(case extension, once), the kind (code, bound to red-flag, with its description as text), the subject, "
        "the date (period.start) and who raised it (author) are required.",
        "Flag",
        (
            Slice("Flag", "case", min=1),
            Rule("Flag.code", value_set=VS_RED_FLAG),
            Rule("Flag.code.text", min=1),
            Rule("Flag.subject", min=1),
            Rule("Flag.period", min=1),
            Rule("Flag.period.start", min=1),
            Rule("Flag.author", min=1),
        ),
    ),
)
