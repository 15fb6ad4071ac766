"""The coded words of a multi-agency family-violence case.

One vocabulary for the domain model, the consent engine, the native API and the profiles'
CodeSystems (profiles/ is generated from these enums by tools/build_profiles.py, and a test
fails if the two drift apart). Each member's value is its code; `display` is the words the
Level 3 tools and the information-sharing schemes use.
"""

from enum import Enum, nonmember

CANONICAL_BASE = "https://fv-gateway.example.org/fhir"


class Coded(str, Enum):
    """A code with a display; the CodeSystem it belongs to is named by `system_name`."""

    def __new__(cls, code: str, display: str, definition: str = ""):
        member = str.__new__(cls, code)
        member._value_ = code
        member.display = display
        member.definition = definition or display
        return member

    @classmethod
    def system(cls) -> str:
        return f"{CANONICAL_BASE}/CodeSystem/{cls.system_name}"

    @classmethod
    def parse(cls, code: str, field: str) -> "Coded":
        try:
            return cls(code)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"{field}: '{code}' is not one of {allowed}") from None


class RiskLevel(Coded):
    system_name = nonmember("risk-level")
    title = nonmember("Risk level")
    IMMINENT = "imminent", "Imminent risk", "At imminent risk of lethality or serious harm"
    HIGH = "high", "High risk", "At high risk of lethality or serious harm"
    AT_RISK = "at-risk", "Risk", "At risk of harm"
    NO_LOW = "no-low", "No/low risk"
    UNKNOWN = "unknown", "Unknown"


class RiskDeterminedBy(Coded):
    system_name = nonmember("risk-determined-by")
    title = nonmember("Who determined a risk level")
    VICTIM_SURVIVOR = "victim-survivor", "Victim survivor's own assessment"
    PRACTITIONER = "practitioner", "Practitioner determined"
    MULTI_AGENCY = "multi-agency", "Multi-agency team determined"


class SubjectRole(Coded):
    system_name = nonmember("subject-role")
    title = nonmember("Role of a person in a case")
    ADULT_VICTIM_SURVIVOR = "adult-victim-survivor", "Adult victim survivor"
    CHILD_VICTIM_SURVIVOR = "child-victim-survivor", "Child victim survivor"
    PERSON_USING_VIOLENCE = "person-using-violence", "Person using violence"
    THIRD_PARTY = "third-party", "Third party"


class AgencyType(Coded):
    system_name = nonmember("agency-type")
    title = nonmember("Type of agency")
    POLICE = "police", "Police"
    HEALTH = "health", "Health"
    MENTAL_HEALTH = "mental-health", "Mental health"
    AOD = "aod", "Alcohol and other drugs"
    CORRECTIONS = "corrections", "Corrections"
    CHILD_PROTECTION = "child-protection", "Child protection"
    HOUSING = "housing", "Housing"
    COURTS = "courts", "Courts"
    YOUTH_JUSTICE = "youth-justice", "Youth justice"
    SPECIALIST_FV_VICTIM_SURVIVOR = "specialist-fv-victim-survivor", "Specialist family violence service for victim survivors"
    SPECIALIST_FV_PERSON_USING_VIOLENCE = (
        "specialist-fv-person-using-violence",
        "Specialist service for people using violence",
    )
    ACCO = "acco", "Aboriginal community-controlled organisation"
    EDUCATION = "education", "Education"
    OTHER = "other", "Other"


# Services whose client is the person using violence: never told where the victim survivor is
# unless a policy explicitly allows it (DESIGN section 3).
PUV_SERVICE_TYPES = frozenset(
    {AgencyType.SPECIALIST_FV_PERSON_USING_VIOLENCE, AgencyType.CORRECTIONS, AgencyType.YOUTH_JUSTICE}
)


class PrescribedStatus(Coded):
    system_name = nonmember("prescribed-status")
    title = nonmember("Prescribed status under an information-sharing scheme")
    INFORMATION_SHARING_ENTITY = "information-sharing-entity", "Information sharing entity (Vic FVISS)"
    RISK_ASSESSMENT_ENTITY = "risk-assessment-entity", "Risk assessment entity (Vic FVISS)"
    CHILD_INFORMATION_SHARING_ENTITY = "child-information-sharing-entity", "Information sharing entity (Vic CISS)"
    QLD_PRESCRIBED_ENTITY = "qld-prescribed-entity", "Prescribed entity (Qld DFVPA Part 5A)"
    QLD_SPECIALIST_DFV_SERVICE = "qld-specialist-dfv-service", "Specialist DFV service provider (Qld DFVPA Part 5A)"


class Jurisdiction(Coded):
    system_name = nonmember("jurisdiction")
    title = nonmember("Jurisdiction whose information-sharing law applies")
    VIC = "VIC", "Victoria"
    QLD = "QLD", "Queensland"
    WA = "WA", "Western Australia"
    DEFAULT = "DEFAULT", "Strict default (no scheme)"


class IndigenousStatus(Coded):
    system_name = nonmember("indigenous-status")
    title = nonmember("Aboriginal and Torres Strait Islander status")
    ABORIGINAL = "aboriginal", "Aboriginal"
    TORRES_STRAIT_ISLANDER = "torres-strait-islander", "Torres Strait Islander"
    BOTH = "both", "Both Aboriginal and Torres Strait Islander"
    NEITHER = "neither", "Neither Aboriginal nor Torres Strait Islander"
    NOT_STATED = "not-stated", "Not stated"

    @property
    def is_first_nations(self) -> bool:
        return self in (IndigenousStatus.ABORIGINAL, IndigenousStatus.TORRES_STRAIT_ISLANDER, IndigenousStatus.BOTH)


class TeamRole(Coded):
    system_name = nonmember("team-role")
    title = nonmember("Role on a multi-agency team")
    CHAIR = "chair", "Chair"
    CO_CHAIR = "co-chair", "Co-chair"
    COORDINATOR = "coordinator", "Coordinator"
    LEAD_AGENCY = "lead-agency", "Lead agency"
    CORE_MEMBER = "core-member", "Core member"
    ASSOCIATE_MEMBER = "associate-member", "Associate member"
    OBSERVER = "observer", "Observer"


class InformationCategory(Coded):
    system_name = nonmember("information-category")
    title = nonmember("Category of information")
    CRIMINAL_HISTORY = "criminal-history", "Criminal history"
    ORDER_STATUS = "order-status", "Protection or intervention order status"
    CUSTODY_STATUS = "custody-status", "Custody and release dates"
    WHEREABOUTS = "whereabouts", "Whereabouts of the person using violence"
    VICTIM_SURVIVOR_LOCATION = "victim-survivor-location", "Victim survivor's location"
    HEALTH = "health", "Health"
    MENTAL_HEALTH = "mental-health", "Mental health"
    AOD = "aod", "Alcohol and other drugs"
    CHILD_PROTECTION = "child-protection", "Child protection involvement"
    HOUSING = "housing", "Housing"
    RISK_ASSESSMENT = "risk-assessment", "Risk assessment"
    CASE_PARTICIPATION = "case-participation", "That a person or agency is part of a case"


class ExcludedInformation(Coded):
    system_name = nonmember("excluded-information")
    title = nonmember("Excluded information category")
    ENDANGER_LIFE_OR_SAFETY = "endanger-life-or-safety", "Could endanger a person's life or result in physical injury"
    PREJUDICE_INVESTIGATION = "prejudice-investigation", "Could prejudice an investigation or inquest"
    PREJUDICE_COURT_PROCEEDINGS = "prejudice-court-proceedings", "Could prejudice a fair trial or court proceedings"
    CONFIDENTIAL_SOURCE = "confidential-source", "Could reveal a confidential source"
    CONTRAVENE_COURT_ORDER = "contravene-court-order", "Would contravene a court order"
    LEGAL_PRIVILEGE = "legal-privilege", "Subject to legal professional privilege"
    PROHIBITED_BY_LAW = "prohibited-by-law", "Sharing is prohibited by another law"


class ConsentStatus(Coded):
    system_name = nonmember("consent-status")
    title = nonmember("Consent to share")
    GIVEN = "given", "Consent given"
    REFUSED = "refused", "Consent refused"
    WITHDRAWN = "withdrawn", "Consent withdrawn"
    NOT_SOUGHT = "not-sought", "Consent not sought"
    UNSAFE_TO_SEEK = "unsafe-to-seek", "Unsafe or unreasonable to seek consent"


class RfiPurpose(Coded):
    system_name = nonmember("rfi-purpose")
    title = nonmember("Purpose of a request for information")
    RISK_ASSESSMENT = "risk-assessment", "Family violence risk assessment"
    RISK_MANAGEMENT = "risk-management", "Family violence risk management / protection"
    CHILD_WELLBEING_SAFETY = "child-wellbeing-safety", "Promoting a child's wellbeing or safety"


class LegalBasis(Coded):
    """The law a release (or a refusal) rests on; the consent engine cites these per rule."""

    system_name = nonmember("legal-basis")
    title = nonmember("Legal basis for sharing information")
    VIC_FVISS = "vic-fvpa-part5a", "Family Violence Protection Act 2008 (Vic) Part 5A: Family Violence Information Sharing Scheme"
    VIC_CISS = "vic-cwsa-part6a", "Child Wellbeing and Safety Act 2005 (Vic) Part 6A: Child Information Sharing Scheme"
    QLD_DFVPA = "qld-dfvpa-part5a", "Domestic and Family Violence Protection Act 2012 (Qld) Part 5A, ss169A-169C"
    WA_CCSA_S23 = "wa-ccsa-s23", "Children and Community Services Act 2004 (WA) s23"
    WA_CCSA_S28 = "wa-ccsa-s28a-28c", "Children and Community Services Act 2004 (WA) ss28A-28C"
    CONSENT = "consent", "Consent of the person the information is about"
    SERIOUS_THREAT = "privacy-serious-threat", "Privacy law exception: necessary to lessen or prevent a serious threat to life, health, safety or welfare"
    NONE = "none", "No legal basis: the information is not shared"


class YesNoUnknown(Coded):
    system_name = nonmember("yes-no-unknown")
    title = nonmember("Yes, no or unknown")
    YES = "yes", "Yes"
    NO = "no", "No"
    UNKNOWN = "unknown", "Unknown"


class RiskFactor(Coded):
    """Evidence-based family violence risk factors (MARAM) used to code 3A/3B factors."""

    system_name = nonmember("risk-factor")
    title = nonmember("Family violence risk factor")
    PHYSICAL_ASSAULT_WHILE_PREGNANT = "assault-while-pregnant", "Physical assault while pregnant or following new birth"
    SELF_ASSESSED_RISK = "self-assessed-fear", "Victim survivor's fear of future violence"
    CONTROLLING_BEHAVIOUR = "controlling-behaviour", "Controlling behaviours, including coercive control"
    ACCESS_TO_WEAPONS = "access-to-weapons", "Access to weapons"
    USE_OF_WEAPON = "use-of-weapon", "Use of a weapon in the most recent event"
    THREATS_TO_KILL = "threats-to-kill", "Has ever threatened to kill the victim survivor"
    STRANGULATION = "strangulation", "Has ever tried to strangle or choke the victim survivor"
    SEXUAL_ASSAULT = "sexual-assault", "Sexual assault of the victim survivor"
    SEPARATION = "separation", "Planning to leave or recent separation"
    ESCALATION = "escalation", "Escalation: increase in severity or frequency of violence"
    STALKING = "stalking", "Stalking, including technology-facilitated"
    OBSESSION_JEALOUSY = "obsession-jealousy", "Obsession or jealous behaviour"
    BREACH_OF_ORDER = "breach-of-order", "History of breaching an intervention or protection order"
    HARM_TO_CHILDREN = "harm-to-children", "Has ever harmed or threatened to harm children"
    HARM_TO_ANIMALS = "harm-to-animals", "Has ever harmed or threatened to harm pets or animals"
    SUICIDE_THREATS = "suicide-threats", "Threats or attempts of suicide or self-harm by the person using violence"
    DRUG_ALCOHOL_MISUSE = "drug-alcohol-misuse", "Drug or alcohol misuse by the person using violence"
    MENTAL_ILLNESS = "mental-illness", "Mental illness or depression of the person using violence"
    UNEMPLOYMENT = "unemployment", "Unemployment or disengagement from education"
    CRIMINAL_HISTORY = "criminal-history", "History of violent behaviour or criminal history"
    FINANCIAL_ABUSE = "financial-abuse", "Financial abuse or difficulties"
    ISOLATION = "isolation", "Isolation of the victim survivor"
    RELEASE_FROM_CUSTODY = "release-from-custody", "Recent or imminent release from custody"
    CHILD_EXPOSURE = "child-exposure", "Child exposed to family violence"


class ProtectiveFactor(Coded):
    """The protective factors checklist of the Level 3C tool."""

    system_name = nonmember("protective-factor")
    title = nonmember("Protective factor (Level 3C checklist)")
    PROTECTION_ORDER = "dvo-in-place", "Domestic Violence Order in place"
    BAIL_CONDITIONS = "bail-conditions", "Bail conditions in place"
    ADDRESS_FLAGGED = "address-flagged-with-police", "Victim-survivor address flagged with Police"
    LOCATION_UNKNOWN_TO_PUV = "location-unknown-to-puv", "PuV does not know victim-survivor's location"
    ENGAGED_WITH_DFV_SERVICE = "engaged-with-dfv-service", "Victim-survivor engaged with DFV service"
    DVO_ON_HEALTH_RECORDS = "dvo-on-health-records", "DVO placed on victim-survivor's health records"
    PUV_MOVED = "puv-moved", "PuV has moved"
    PUV_IN_PRISON = "puv-in-prison", "PuV is in prison"
    PUV_IN_MBC_PROGRAM = "puv-in-mbc-program", "PuV engaged with MBC program"
    PUV_DECEASED = "puv-deceased", "PuV is deceased"
    VICTIM_SURVIVOR_MOVED = "victim-survivor-moved", "Victim-survivor has moved"
    DURESS_ALARM = "duress-alarm", "Victim-survivor has personal duress alarm"
    SECURITY_CAMERAS = "security-cameras", "Victim-survivor has security cameras"
    HEALTH_RECORD_ALERTS = "health-record-alerts", "Alerts placed on victim-survivor's health records noting DFV"
    OTHER = "other", "Other"


class SafetyMeasure(Coded):
    """Safety and accountability measures considered at closure (Level 3C)."""

    system_name = nonmember("closure-safety-measure")
    title = nonmember("Safety and accountability measure considered at closure")
    VICTIM_SURVIVOR_SAFE = "victim-survivor-safe", "Victim-survivor is immediately safe from serious injury or lethality"
    PUV_NOT_HIGH_RISK = "puv-not-high-risk", "PuV no longer considered to pose imminent or high risk"
    CHILDREN_SAFE = "children-safe", "Children are immediately safe from serious injury or lethality"
    REFERRALS_CONFIRMED = "referrals-confirmed", "Relevant referrals have been made and confirmed with the receiving agency"
    OTHER = "other", "Other"


class FactorPresence(Coded):
    system_name = nonmember("factor-presence")
    title = nonmember("Whether a risk or protective factor is present")
    PRESENT = "present", "Present"
    ABSENT = "absent", "Absent"
    UNKNOWN = "unknown", "Unknown"


class FactorDetail(Coded):
    system_name = nonmember("factor-detail")
    title = nonmember("Detail recorded about a risk factor (3B Part 4)")
    FREQUENCY = "frequency", "Frequency"
    SEVERITY = "severity", "Severity"


class StrategyArea(Coded):
    """The three strategy areas of the 3A tool, Part 3 B."""

    system_name = nonmember("strategy-area")
    title = nonmember("Multi-agency safety planning strategy area")
    SUPPORTS = "victim-survivor-supports", "Facilitate engagement of supports for the victim survivor"
    PUV_VISIBILITY = "puv-visibility", "PuV visibility and action interventions"
    OTHER = "other-risk-management", "Other risk management"


class TaskParameter(Coded):
    system_name = nonmember("task-parameter")
    title = nonmember("Inputs and outputs of the gateway's Tasks")
    SUBJECT = "subject", "A person the request is about"
    INFORMATION_CATEGORY = "information-category", "Category of information requested"
    PURPOSE = "purpose", "Purpose of the request"
    QUESTION = "question", "What the requester asks"
    RESPONSE = "response", "An item of information given in answer"
    WITHHELD = "withheld", "An item given in answer that was not released (its category and subject only)"
    FEEDBACK_RECORDED_ON = "feedback-recorded-on", "Feedback on an action: when it was given"
    FEEDBACK_DONE = "feedback-done", "Feedback on an action: was it done?"
    FEEDBACK_SAFETY_IMPROVED = "feedback-safety-improved", "Feedback on an action: did safety improve?"
    FEEDBACK_FURTHER_INFORMATION = "feedback-further-information", "Feedback on an action: further information"


class TaskType(Coded):
    system_name = nonmember("task-type")
    title = nonmember("Kind of task a case carries")
    RFI = "rfi", "Request for information"
    SAFETY_ACTION = "safety-action", "Safety-plan action"


class FlagType(Coded):
    system_name = nonmember("red-flag")
    title = nonmember("Red flag: a rise in risk or a failed plan")
    RISK_ESCALATION = "risk-escalation", "Multi-agency risk level rose"
    BREACH_OF_ORDER = "breach-of-order", "Breach of an intervention or protection order"
    CUSTODY_RELEASE = "custody-release", "Person using violence released from custody"
    ACTION_FAILED = "action-failed", "A safety-plan action failed or is overdue"


class WithheldReason(Coded):
    system_name = nonmember("withheld-reason")
    title = nonmember("Why an item given in answer was not released")
    EXCLUDED_INFORMATION = "excluded-information", "Excluded information: never shared"
    SAFETY = "safety", "Would reveal where the victim survivor is to a service working with the person using violence"
    PROFESSIONAL_JUDGEMENT = "professional-judgement", "Referred for professional judgement: not released automatically"
    NOT_PERMITTED = "not-permitted", "No rule of the scheme permits this release"


class MessageEvent(Coded):
    system_name = nonmember("message-event")
    title = nonmember("Events of the gateway's FHIR messages")
    RFI_REQUEST = "rfi-request", "A request for information, to the agency that holds it"
    RFI_RESPONSE = "rfi-response", "The answer to a request for information: released items, and those withheld"
    RFI_STATUS = "rfi-status", "A request for information was accepted, rejected, failed or is overdue"
    NOTIFICATION = "notification", "Something changed on a case; fetch it through the consent-checked read path"


ALL_VOCABULARIES: tuple[type[Coded], ...] = (
    RiskLevel,
    RiskDeterminedBy,
    SubjectRole,
    IndigenousStatus,
    AgencyType,
    PrescribedStatus,
    Jurisdiction,
    TeamRole,
    InformationCategory,
    ExcludedInformation,
    ConsentStatus,
    RfiPurpose,
    LegalBasis,
    YesNoUnknown,
    RiskFactor,
    ProtectiveFactor,
    SafetyMeasure,
    FactorPresence,
    FactorDetail,
    StrategyArea,
    TaskParameter,
    TaskType,
    FlagType,
    WithheldReason,
    MessageEvent,
)
