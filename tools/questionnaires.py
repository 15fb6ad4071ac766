"""The Level 3 tools (3A, 3B, 3C) as data, part by part and question by question.

tools/build_profiles.py turns these trees into profiles/Questionnaire-level-3*.json. Each node is
named relative to its parent; the builder joins the names with dots, so a linkId is always
`<tool>.<part or section>[.<section>].<field>` (see profiles/README.md). Renaming a node renames
the linkId that answers are mapped by: tests/unit/test_profiles.py pins the full list.

Answer lists come from gateway/domain/vocabulary.py through the ValueSets built beside the
CodeSystems; `VS_*` below are their ids.
"""

from dataclasses import dataclass, field

from gateway.domain.vocabulary import Coded, ProtectiveFactor, SafetyMeasure, YesNoUnknown

# ValueSet ids (profiles/ValueSet-<id>.json).
VS_RISK_LEVEL = "risk-level"
VS_PRACTITIONER_RISK_LEVEL = "practitioner-risk-level"
VS_ONGOING_MULTI_AGENCY_RISK_LEVEL = "ongoing-multi-agency-risk-level"
VS_CLOSURE_MULTI_AGENCY_RISK_LEVEL = "closure-multi-agency-risk-level"
VS_CLOSURE_VICTIM_SURVIVOR_RISK_LEVEL = "closure-victim-survivor-risk-level"
VS_YES_NO_UNKNOWN = "yes-no-unknown"
VS_CONSENT_STATUS = "consent-status"
VS_AGENCY_TYPE = "agency-type"
VS_RISK_FACTOR = "risk-factor"
VS_PROTECTIVE_FACTOR = "protective-factor"
VS_CLOSURE_SAFETY_MEASURE = "closure-safety-measure"
VS_INDIGENOUS_STATUS = "indigenous-status"

# Resource types a `reference` answer may point at (questionnaire-referenceResource extension).
# Every person a case is about is a Patient (gateway/domain/people.py); their role tells who they are.
VICTIM_SURVIVOR = ("Patient",)
PERSON = ("Patient",)
AGENCY = ("Organization",)
PRACTITIONER = ("Practitioner", "PractitionerRole")
ATTENDEE = ("Practitioner", "PractitionerRole", "Organization")


@dataclass(frozen=True)
class When:
    """enableWhen on a sibling (named relative to the same parent): `question operator answer`."""

    question: str
    answer: bool | Coded
    operator: str = "="


@dataclass(frozen=True)
class Item:
    name: str
    text: str
    type: str
    required: bool = False
    repeats: bool = False
    value_set: str | None = None
    reference_to: tuple[str, ...] = ()
    when: tuple[When, ...] = ()
    items: tuple["Item", ...] = field(default_factory=tuple)


def group(name: str, text: str, *items: Item, repeats: bool = False) -> Item:
    """A group; it is required when any of its direct children is (unless it repeats: rows)."""
    required = not repeats and any(child.required for child in items)
    return Item(name, text, "group", required=required, repeats=repeats, items=items)


def display(name: str, text: str) -> Item:
    return Item(name, text, "display")


def string(name: str, text: str, **kw) -> Item:
    return Item(name, text, "string", **kw)


def text(name: str, text_: str, **kw) -> Item:
    return Item(name, text_, "text", **kw)


def date(name: str, text_: str, **kw) -> Item:
    return Item(name, text_, "date", **kw)


def boolean(name: str, text_: str, **kw) -> Item:
    return Item(name, text_, "boolean", **kw)


def choice(name: str, text_: str, value_set: str, **kw) -> Item:
    return Item(name, text_, "choice", value_set=value_set, **kw)


def reference(name: str, text_: str, to: tuple[str, ...], **kw) -> Item:
    return Item(name, text_, "reference", reference_to=to, **kw)


def when(question: str, answer: bool | Coded, operator: str = "=") -> tuple[When, ...]:
    return (When(question, answer, operator),)


def factor_rows(name: str, text_: str, value_set: str, with_detail: bool) -> Item:
    """One row per factor: coded where the list has it, described in words, and for risk factors
    the frequency and severity the 3B tool asks for."""
    detail = (string("frequency", "Frequency"), string("severity", "Severity")) if with_detail else ()
    return group(
        name,
        text_,
        choice("factor", "Factor (coded, where the list has it)", value_set),
        text("description", "Description", required=True),
        *detail,
        repeats=True,
    )


def attendance() -> tuple[Item, ...]:
    """Agencies and representatives present, observers, apologies, conflicts of interest."""
    return (
        group(
            "representatives-present",
            "Agencies and representatives present",
            reference("agency", "Agency", AGENCY, required=True),
            reference("representative", "Representative", PRACTITIONER),
            repeats=True,
        ),
        reference("observers", "Observers", ATTENDEE, repeats=True),
        reference("apologies", "Apologies", ATTENDEE, repeats=True),
        text("conflicts-of-interest", "Conflicts of interest"),
    )


def risk_and_protective_summary(rationale_text: str) -> tuple[Item, ...]:
    return (
        factor_rows("key-risk-factors", "Key risk factors", VS_RISK_FACTOR, with_detail=True),
        factor_rows("key-protective-factors", "Key protective factors", VS_PROTECTIVE_FACTOR, with_detail=False),
        text("rationale", rationale_text),
    )


def yes_no_unknown_with_details(name: str, question: str) -> tuple[Item, ...]:
    return (
        choice(f"{name}-changed", question, VS_YES_NO_UNKNOWN),
        text(f"{name}-details", "If yes, details", when=when(f"{name}-changed", YesNoUnknown.YES)),
    )


def case_closure(note: str) -> tuple[Item, ...]:
    return (
        boolean("case-can-be-closed", "Can the case be closed?", required=True),
        display("case-closure-note", note),
        date(
            "next-meeting-date",
            "Next multi-agency meeting date",
            when=when("case-can-be-closed", False),
        ),
    )


LEVEL_3A = (
    group(
        "part1",
        "Part 1: Referral summary and victim-survivor information",
        group(
            "referral",
            "A. Referral details",
            display(
                "instructions",
                "Capture the key details relating to the referral if the case has been referred. If a "
                "Level 2 assessment has not been undertaken, this should be done before completing the "
                "Level 3 tool.",
            ),
            reference("victim-survivor-name", "Victim-survivor name", VICTIM_SURVIVOR, required=True),
            text("victim-survivor-address", "Victim-survivor address"),
            group(
                "puv",
                "Person(s) using violence",
                reference("name", "PuV name", PERSON, required=True),
                text("address", "PuV address"),
                repeats=True,
            ),
            group(
                "children",
                "Child/ren",
                reference("name", "Child name", PERSON, required=True),
                Item("age", "Child age (years)", "integer"),
                repeats=True,
            ),
            reference("referring-agency-name", "Referring agency name", AGENCY, required=True),
            date("referral-date", "Date of referral", required=True),
            text("referring-agency-contact-details", "Referral agency contact details"),
            choice("referral-consent-status", "Referral consent status", VS_CONSENT_STATUS, required=True),
            choice(
                "victim-survivor-risk-level",
                "Victim-survivor assessment of risk at referral",
                VS_RISK_LEVEL,
                required=True,
            ),
            choice(
                "practitioner-risk-level",
                "Practitioner determined risk level of victim-survivor at referral",
                VS_PRACTITIONER_RISK_LEVEL,
                required=True,
            ),
            group(
                "practitioner-rationale",
                "Practitioner rationale for risk level and referral: include summary of risk and "
                "protective factors from the Level 2 risk assessment tool",
                *risk_and_protective_summary("Rationale"),
            ),
        ),
        group(
            "prior-responses",
            "B. Prior and existing responses",
            text(
                "actions-taken",
                "Details of any risk management action already undertaken: any action which has already "
                "been taken to help keep the victim-survivor and/or other persons safe (past responses at "
                "the point of referral)",
            ),
            group(
                "agencies-involved",
                "Agencies previously and currently involved with victim-survivor, child and/or PuV",
                reference("agency-name", "Agency name", AGENCY, required=True),
                text("contact-details", "Contact details"),
                text("involvement", "Details of involvement"),
                repeats=True,
            ),
        ),
        group(
            "additional",
            "Additional information recorded by the gateway (not on the printed Level 3A form): "
            "cultural identity and whether the parties were informed of the coordination",
            choice(
                "indigenous-status",
                "Victim-survivor's Aboriginal and/or Torres Strait Islander status, where recorded",
                VS_INDIGENOUS_STATUS,
            ),
            text(
                "cultural-identity",
                "Victim-survivor's cultural identity (e.g. cultural background, community, language), "
                "where recorded",
            ),
            boolean(
                "victim-survivor-informed",
                "Has the victim-survivor been informed that the case is being coordinated by the "
                "multi-agency team?",
            ),
            date("victim-survivor-informed-date", "Date informed, or date it was decided not to inform"),
            text(
                "victim-survivor-not-informed-reason",
                "Why the victim-survivor was not informed",
                when=when("victim-survivor-informed", False),
            ),
            boolean(
                "puv-informed",
                "Has the PuV been informed of the coordination (only where safe to do so)?",
            ),
            date("puv-informed-date", "Date informed, or date it was decided not to inform"),
            text(
                "puv-not-informed-reason",
                "Why the PuV was not informed (e.g. unsafe: it would alert them to the coordination)",
                when=when("puv-informed", False),
            ),
        ),
    ),
    group(
        "part2",
        "Part 2: Initial multi-agency risk assessment",
        display(
            "instructions",
            "A. Requests for information: each agency's RFIs should be captured in the following "
            "section to supplement the information gathered during the Level 2 risk assessment. "
            "(Parts 1 and 2 to be completed ahead of the first meeting where possible.)",
        ),
        group(
            "rfis",
            "Agency RFIs",
            choice("organisation", "Organisation", VS_AGENCY_TYPE, required=True),
            reference("organisation-name", "Organisation name", AGENCY, required=True),
            text("input", "RFI input", required=True),
            date("input-date", "Date of input", required=True),
            repeats=True,
        ),
    ),
    group(
        "part3",
        "Part 3: Initial multi-agency risk management assessment and strategy",
        display(
            "instructions",
            "Multi-agency risk management assessment and strategy: re-assess risk and identify an "
            "integrated, multi-agency risk management response focused on (A) reviewing the "
            "practitioner's assessment of risk through a multi-agency lens, (B) facilitating access and "
            "engagement with support services, (C) ensuring the PuV remains in focus and (D) ongoing "
            "safety planning. Record the outcomes of the initial multi-agency meeting and all the risk "
            "management and safety responses put in place to respond to the level of risk present.",
        ),
        group(
            "a",
            "A. Initial multi-agency risk assessment",
            date("meeting-date", "Date of meeting", required=True),
            *attendance(),
            display(
                "review-note",
                "Review the key risk factors and key protective factors in Part 1 to determine the following.",
            ),
            choice(
                "multi-agency-risk-level",
                "Multi-agency determined risk level of victim-survivor (in consideration of the best "
                "available information, including RFIs)",
                VS_PRACTITIONER_RISK_LEVEL,
                required=True,
            ),
            text("rationale", "Rationale for the multi-agency risk level"),
            text("immediate-safety-concerns", "Are there any immediate safety concerns?"),
            text(
                "other-information",
                "Any other important information and key dates (e.g. court dates, release from custody)?",
            ),
        ),
        group(
            "b",
            "B. Multi-agency safety planning strategy",
            display(
                "instructions",
                "Specific agency actions are captured in the separate safety plan; this section summarises "
                "the response as a whole and documents strategies for reducing risk to the victim-survivor "
                "and their child/ren, and increasing PuV accountability.",
            ),
            text(
                "supports",
                "1. Facilitate engagement of supports for victim-survivor (and their children as relevant): "
                "summary of discussion and key actions",
            ),
            text(
                "puv-visibility",
                "2. PuV visibility and action interventions: summary of discussion and key actions",
            ),
            text(
                "other-risk-management",
                "3. Other risk management: summary of discussion and key actions not already captured above",
            ),
        ),
        *case_closure("If yes, please complete the Level 3C tool. If no, complete the Level 3B tool at the next meeting."),
    ),
)


LEVEL_3B = (
    group(
        "part1",
        "Part 1: Meeting details",
        reference("victim-survivor-name", "Victim-survivor name", VICTIM_SURVIVOR, required=True),
        reference("puv-name", "PuV name", PERSON, repeats=True),
        date("meeting-date", "Date of meeting", required=True),
        *attendance(),
        group(
            "previous-meeting",
            "Summary of previous meeting",
            date("date", "Previous meeting date"),
            choice(
                "victim-survivor-risk-level",
                "Victim-survivor assessment of risk at previous meeting",
                VS_RISK_LEVEL,
            ),
            choice(
                "multi-agency-risk-level",
                "Multi-agency determined risk level of victim-survivor at previous meeting",
                VS_ONGOING_MULTI_AGENCY_RISK_LEVEL,
            ),
            display(
                "summary-note",
                "Summary of risk factors, protective factors, and rationale for ongoing response (these "
                "should continue to be updated from meeting to meeting).",
            ),
            *risk_and_protective_summary("Rationale for ongoing response"),
        ),
    ),
    group(
        "part2",
        "Part 2: Updates from agencies",
        group(
            "agency-updates",
            "Agencies to provide updates on actions relating to the multi-agency response since last meeting",
            choice("organisation", "Organisation", VS_AGENCY_TYPE, required=True),
            reference("organisation-name", "Organisation name", AGENCY),
            text("update", "Updates", required=True),
            repeats=True,
        ),
    ),
    group(
        "part3",
        "Part 3: Changes to victim-survivor and PuV circumstances",
        display(
            "instructions",
            "Consider whether there has been any change in, or new information available relating to, the "
            "victim-survivor, PuV or children since the initial meeting. All agencies should input into "
            "these sections.",
        ),
        *yes_no_unknown_with_details(
            "victim-survivor-circumstances",
            "Has there been any change in the victim-survivor's circumstances? (e.g. living arrangements, "
            "employment, health (incl. pregnancy, AOD), engagement with services, caring responsibilities, "
            "and relationships)",
        ),
        *yes_no_unknown_with_details(
            "puv-circumstances",
            "Has there been any change in the PuV's circumstances? (e.g. living arrangements (incl. "
            "custodial/remand status), involvement with police (incl. breaches of orders), relationship "
            "status, health, employment, and engagement with services)",
        ),
        *yes_no_unknown_with_details(
            "children-circumstances",
            "Has there been any change in the children's circumstances? (e.g. living arrangements, "
            "involvement of child safety, changes in relationships with adults including victim-survivor "
            "and PuV, changes in behaviour)",
        ),
    ),
    group(
        "part4",
        "Part 4: Changes to risk and protective factors",
        display(
            "instructions",
            "Note any changes in the risk and protective factors, to include in the ongoing summary of "
            "risk and protective factors.",
        ),
        text(
            "high-risk-factors-changed",
            "Have there been changes to the occurrence, frequency or severity of the high-risk factors to "
            "the victim-survivor or children identified in the initial multi-agency team meeting?",
        ),
        factor_rows(
            "new-risk-factors",
            "Are there any new risk factors (both high risk or general risk factors) to the victim-survivor "
            "or children present? Please detail frequency and severity of risk factors.",
            VS_RISK_FACTOR,
            with_detail=True,
        ),
        text(
            "protective-factors-changed",
            "Has there been any change to the protective factors identified in the initial multi-agency "
            "team meeting (or subsequent meetings as relevant)? Please detail.",
        ),
        factor_rows(
            "new-protective-factors",
            "Are there any new protective factors now in place? Please detail.",
            VS_PROTECTIVE_FACTOR,
            with_detail=False,
        ),
    ),
    group(
        "part5",
        "Part 5: Review of ongoing multi-agency risk management strategy",
        display(
            "instructions",
            "Complete an updated risk assessment and detail any key safety concerns, with reference to any "
            "new information or changes in risk over the course of the case.",
        ),
        choice("victim-survivor-risk-level", "Updated victim-survivor's assessment of risk", VS_RISK_LEVEL),
        choice(
            "multi-agency-risk-level",
            "Updated multi-agency risk assessment",
            VS_ONGOING_MULTI_AGENCY_RISK_LEVEL,
            required=True,
        ),
        text("rationale", "Rationale for assessment"),
        *case_closure("If yes, please complete the Level 3C tool. If no, complete a new Level 3B tool at the next meeting."),
    ),
)


LEVEL_3C = (
    group(
        "a",
        "A. Case summary",
        reference("victim-survivor-name", "Victim-survivor name", VICTIM_SURVIVOR, required=True),
        reference("puv-name", "PuV name", PERSON, repeats=True),
        date("closure-date", "Date of case closure", required=True),
        choice(
            "multi-agency-risk-level",
            "Multi-agency determined risk level at closure (the case cannot be closed if there is imminent risk)",
            VS_CLOSURE_MULTI_AGENCY_RISK_LEVEL,
            required=True,
        ),
        choice(
            "victim-survivor-risk-level",
            "Victim-survivor's assessment of risk at closure",
            VS_CLOSURE_VICTIM_SURVIVOR_RISK_LEVEL,
            required=True,
        ),
        choice(
            "victim-survivor-agrees",
            "Does the victim-survivor agree to the case closure?",
            VS_YES_NO_UNKNOWN,
            required=True,
        ),
        text(
            "victim-survivor-agrees-details",
            "If no or unknown, detail",
            when=(When("victim-survivor-agrees", YesNoUnknown.NO), When("victim-survivor-agrees", YesNoUnknown.UNKNOWN)),
        ),
        choice(
            "protective-factors",
            "Protective factors present at the time of summary and/or closure (tick as relevant)",
            VS_PROTECTIVE_FACTOR,
            repeats=True,
        ),
        string(
            "protective-factors-other",
            "Other protective factor (please specify)",
            when=when("protective-factors", ProtectiveFactor.OTHER),
        ),
        choice(
            "safety-measures",
            "Safety and accountability measures considered (tick as relevant)",
            VS_CLOSURE_SAFETY_MEASURE,
            repeats=True,
        ),
        string(
            "safety-measures-other",
            "Other safety or accountability measure (please specify)",
            when=when("safety-measures", SafetyMeasure.OTHER),
        ),
        text(
            "rationale",
            "Rationale for closure and ongoing safety plan: detail rationale for risk level, and why this "
            "case no longer requires a multi-agency response",
            required=True,
        ),
        group(
            "agencies-staying-involved",
            "Agencies to stay involved with victim-survivor, child and/or PuV after closure",
            reference("agency-name", "Agency name", AGENCY, required=True),
            text("contact-details", "Contact details"),
            text("expected-involvement", "Details of expected involvement"),
            repeats=True,
        ),
    ),
    group(
        "b",
        "B. Case summary and closure note",
        display(
            "instructions",
            "The case summary and closure note should detail: a summary of the case including how it was "
            "referred to the multi-agency response and which agencies were involved; key risk factors in "
            "the case and strategies implemented to address these risk factors; ongoing risk factors for "
            "the victim-survivor; assessment of the effectiveness of the response in reducing the risk to "
            "the victim-survivor and holding the PuV to account, and lessons learned; any feedback received "
            "from the victim-survivor in the management of the case.",
        ),
        text("closure-note", "Case summary and closure note", required=True),
        Item(
            "attachments",
            "Attached risk assessments, safety plans and meeting notes",
            "attachment",
            repeats=True,
        ),
        reference("author", "Case closure summary author", PRACTITIONER, required=True),
        date("author-date", "Date (author)", required=True),
        reference("reviewer-approver", "Case closure summary reviewer and approver", PRACTITIONER, required=True),
        date("reviewer-approver-date", "Date (reviewer and approver)", required=True),
    ),
)


# (id, title, description, items)
QUESTIONNAIRES = (
    (
        "level-3a",
        "Level 3A: Initial multi-agency risk assessment and management tool",
        "The Level 3A tool of the Level 3 multi-agency dynamic risk assessment and safety management "
        "tools: intake into the multi-agency response, including review of the Level 2 risk assessment "
        "and safety plan (Part 1), multi-agency requests for information (Part 2), and the initial "
        "multi-agency risk management assessment and safety planning strategy (Part 3).",
        LEVEL_3A,
    ),
    (
        "level-3b",
        "Level 3B: Ongoing multi-agency risk assessment and management tool",
        "The Level 3B tool of the Level 3 multi-agency dynamic risk assessment and safety management "
        "tools, completed at each multi-agency meeting after the first until case closure: meeting "
        "details (Part 1), updates from agencies (Part 2), changes in victim-survivor and PuV "
        "circumstances (Part 3), changes in risk and protective factors (Part 4) and review of the "
        "ongoing multi-agency risk management strategy (Part 5).",
        LEVEL_3B,
    ),
    (
        "level-3c",
        "Level 3C: Case summary and closure tool",
        "The Level 3C tool of the Level 3 multi-agency dynamic risk assessment and safety management "
        "tools: the case summary, the rationale for closure and ongoing risk management (A), and the "
        "case summary and closure note with its author and reviewer/approver (B).",
        LEVEL_3C,
    ),
)
