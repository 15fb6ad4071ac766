"""The Level 3 forms as submitted <-> QuestionnaireResponse (the faithful record of each form).

One 3A response per case (filled in over Parts 1-3, in progress until the initial meeting is
recorded), one 3B response per review meeting, one 3C response at closure. The people and
agencies a form names are references to their Patient and Organization resources.
"""

from dataclasses import dataclass
from datetime import date

from gateway.domain.case import CoordinationNotice, MultiAgencyCase
from gateway.domain.forms import (
    AgencyInvolvement,
    AgencyUpdate,
    Attendance,
    CircumstanceChange,
    Closure,
    Meeting,
    MeetingKind,
    Referral,
    RfiInput,
    Signature,
)
from gateway.domain.risk import FactorObservation
from gateway.domain.vocabulary import (
    CANONICAL_BASE,
    AgencyType,
    ConsentStatus,
    ProtectiveFactor,
    RiskFactor,
    RiskLevel,
    SafetyMeasure,
    SubjectRole,
    YesNoUnknown,
)
from gateway.mappings import answers as a
from gateway.mappings.answers import Answers
from gateway.mappings.common import ext, fhir_date, parse_date, reference


def questionnaire_url(form: str) -> str:
    return f"{CANONICAL_BASE}/Questionnaire/level-{form}"


def _response(response_id: str, form: str, case: MultiAgencyCase, authored: date, author: str, status: str, items) -> dict:
    victim = _victim(case)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "extension": [ext("case", valueReference=reference("EpisodeOfCare", case.id))],
        "questionnaire": questionnaire_url(form),
        "status": status,
        "subject": reference("Patient", victim.id),
        "authored": fhir_date(authored),
        "author": reference("Organization", author),
        "item": [i for i in items if i],
    }


def _victim(case: MultiAgencyCase):
    return (case.people_with_role(SubjectRole.ADULT_VICTIM_SURVIVOR) or case.people_with_role(SubjectRole.CHILD_VICTIM_SURVIVOR))[0]


def _people(case: MultiAgencyCase, role: SubjectRole):
    return case.people_with_role(role)


# -- factors and attendance, shared by the forms -------------------------------------------------


def _factor_rows(link_id: str, factors: tuple[FactorObservation, ...], protective: bool) -> list[dict]:
    chosen = [f for f in factors if f.is_protective == protective]
    return a.rows(
        link_id,
        [
            (
                a.answer(f"{link_id}.factor", a.code(f.protective_factor if protective else f.risk_factor)),
                a.answer(f"{link_id}.description", a.text(f.text)),
                None if protective else a.answer(f"{link_id}.frequency", a.text(f.frequency)),
                None if protective else a.answer(f"{link_id}.severity", a.text(f.severity)),
            )
            for f in chosen
        ],
    )


def _read_factors(found: Answers, link_id: str, protective: bool) -> tuple[FactorObservation, ...]:
    return tuple(
        FactorObservation(
            text=row.text(f"{link_id}.description"),
            risk_factor=None if protective else row.code(f"{link_id}.factor", RiskFactor),
            protective_factor=row.code(f"{link_id}.factor", ProtectiveFactor) if protective else None,
            frequency=row.text(f"{link_id}.frequency") or None,
            severity=row.text(f"{link_id}.severity") or None,
        )
        for row in found.rows(link_id)
    )


def _attendance_items(prefix: str, attendance: Attendance) -> list:
    return [
        a.rows(
            f"{prefix}.representatives-present",
            [
                (
                    a.answer(f"{prefix}.representatives-present.agency", a.ref("Organization", agency_id)),
                    a.answer(f"{prefix}.representatives-present.representative", a.named(rep)),
                )
                for agency_id, rep in attendance.present
            ],
        ),
        a.answer(f"{prefix}.observers", *(a.named(o) for o in attendance.observers)),
        a.answer(f"{prefix}.apologies", *(a.named(o) for o in attendance.apologies)),
        a.answer(f"{prefix}.conflicts-of-interest", a.text(attendance.conflicts_of_interest)),
    ]


def _read_attendance(found: Answers, prefix: str) -> Attendance:
    rows = found.rows(f"{prefix}.representatives-present")
    return Attendance(
        present=tuple(
            (row.ref_id(f"{prefix}.representatives-present.agency"), (row.names(f"{prefix}.representatives-present.representative") or [""])[0])
            for row in rows
        ),
        observers=tuple(found.names(f"{prefix}.observers")),
        apologies=tuple(found.names(f"{prefix}.apologies")),
        conflicts_of_interest=found.text(f"{prefix}.conflicts-of-interest"),
    )


# -- 3A ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeForm:
    """What a 3A response records (people themselves are Patients, referenced by id)."""

    referral: Referral
    notices: tuple[CoordinationNotice, ...]
    rfi_inputs: tuple[RfiInput, ...]
    initial_meeting: Meeting | None

    @classmethod
    def of(cls, case: MultiAgencyCase) -> "IntakeForm":
        initial = case.meetings[0] if case.meetings else None
        return cls(case.referral, tuple(case.notices[:2]), tuple(case.rfi_inputs), initial)


def intake_to_fhir(case: MultiAgencyCase) -> dict:
    r = case.referral
    victim = _victim(case)
    p = "3a.part1.referral"
    rationale = f"{p}.practitioner-rationale"
    part1 = a.group(
        "3a.part1",
        a.group(
            p,
            a.answer(f"{p}.victim-survivor-name", a.ref("Patient", victim.id, victim.name)),
            a.answer(f"{p}.victim-survivor-address", a.text(victim.address)),
            a.rows(f"{p}.puv", [(a.answer(f"{p}.puv.name", a.ref("Patient", x.id, x.name)), a.answer(f"{p}.puv.address", a.text(x.address)))
                                for x in _people(case, SubjectRole.PERSON_USING_VIOLENCE)]),
            a.rows(f"{p}.children", [(a.answer(f"{p}.children.name", a.ref("Patient", x.id, x.name)), a.answer(f"{p}.children.age", a.number(x.age)))
                                     for x in _people(case, SubjectRole.CHILD_VICTIM_SURVIVOR)]),
            a.answer(f"{p}.referring-agency-name", a.ref("Organization", r.referring_agency_id)),
            a.answer(f"{p}.referral-date", a.when(r.referral_date)),
            a.answer(f"{p}.referring-agency-contact-details", a.text(r.referral_contact)),
            a.answer(f"{p}.referral-consent-status", a.code(r.consent_status)),
            a.answer(f"{p}.victim-survivor-risk-level", a.code(r.victim_survivor_risk)),
            a.answer(f"{p}.practitioner-risk-level", a.code(r.practitioner_risk)),
            a.group(
                rationale,
                _factor_rows(f"{rationale}.key-risk-factors", r.key_risk_factors, protective=False),
                _factor_rows(f"{rationale}.key-protective-factors", r.key_protective_factors, protective=True),
                a.answer(f"{rationale}.rationale", a.text(r.rationale)),
            ),
        ),
        a.group(
            "3a.part1.prior-responses",
            a.answer("3a.part1.prior-responses.actions-taken", a.text(r.prior_actions)),
            _involvement_rows("3a.part1.prior-responses.agencies-involved", r.agencies_involved, "involvement"),
        ),
        a.group("3a.part1.additional", *_additional(case)),
    )
    part2 = a.group(
        "3a.part2",
        a.rows("3a.part2.rfis", [
            (
                a.answer("3a.part2.rfis.organisation", a.code(i.organisation_type)),
                a.answer("3a.part2.rfis.organisation-name", a.named(i.organisation_name)),
                a.answer("3a.part2.rfis.input", a.text(i.input)),
                a.answer("3a.part2.rfis.input-date", a.when(i.input_date)),
            )
            for i in case.rfi_inputs
        ]),
    )
    initial = case.meetings[0] if case.meetings else None
    part3 = _initial_meeting(initial) if initial else None
    authored = initial.meeting_date if initial else r.referral_date
    status = "completed" if initial else "in-progress"
    return _response(f"{case.id}-3a", "3a", case, authored, r.referring_agency_id, status, [part1, part2, part3])


def _involvement_rows(link_id: str, rows: tuple[AgencyInvolvement, ...], detail: str) -> list[dict]:
    return a.rows(link_id, [
        (
            a.answer(f"{link_id}.agency-name", a.named(row.agency_name)),
            a.answer(f"{link_id}.contact-details", a.text(row.contact_details)),
            a.answer(f"{link_id}.{detail}", a.text(row.details)),
        )
        for row in rows
    ])


def _read_involvement(found: Answers, link_id: str, detail: str) -> tuple[AgencyInvolvement, ...]:
    return tuple(
        AgencyInvolvement(row.names(f"{link_id}.agency-name")[0], row.text(f"{link_id}.contact-details"), row.text(f"{link_id}.{detail}"))
        for row in found.rows(link_id)
    )


def _additional(case: MultiAgencyCase) -> list:
    victim = _victim(case)
    p = "3a.part1.additional"
    items = [
        a.answer(f"{p}.indigenous-status", a.code(victim.indigenous_status)),
        a.answer(f"{p}.cultural-identity", a.text(victim.cultural_identity)),
    ]
    for role, key in ((SubjectRole.ADULT_VICTIM_SURVIVOR, "victim-survivor"), (SubjectRole.PERSON_USING_VIOLENCE, "puv")):
        notices = case.notice_for(role)
        if notices:
            n = notices[0]
            items += [
                a.answer(f"{p}.{key}-informed", a.flag(n.informed)),
                a.answer(f"{p}.{key}-informed-date", a.when(n.on)),
                a.answer(f"{p}.{key}-not-informed-reason", a.text(n.reason)),
            ]
    return items


def _initial_meeting(m: Meeting) -> dict:
    p = "3a.part3.a"
    return a.group(
        "3a.part3",
        a.group(
            p,
            a.answer(f"{p}.meeting-date", a.when(m.meeting_date)),
            *_attendance_items(p, m.attendance),
            a.answer(f"{p}.multi-agency-risk-level", a.code(m.multi_agency_risk)),
            a.answer(f"{p}.rationale", a.text(m.rationale)),
            a.answer(f"{p}.immediate-safety-concerns", a.text(m.immediate_safety_concerns)),
            a.answer(f"{p}.other-information", a.text(m.key_dates)),
        ),
        a.group(
            "3a.part3.b",
            a.answer("3a.part3.b.supports", a.text(m.strategy_supports)),
            a.answer("3a.part3.b.puv-visibility", a.text(m.strategy_puv_visibility)),
            a.answer("3a.part3.b.other-risk-management", a.text(m.strategy_other)),
        ),
        a.answer("3a.part3.case-can-be-closed", a.flag(m.can_close)),
        a.answer("3a.part3.next-meeting-date", a.when(m.next_meeting)),
    )


def intake_from_fhir(response: dict, people: dict[str, SubjectRole]) -> IntakeForm:
    """`people` maps each Patient id the form names to its role (from the Patient resources)."""
    found = Answers(response["item"])
    p = "3a.part1.referral"
    rationale = f"{p}.practitioner-rationale"
    referral = Referral(
        referral_date=found.date(f"{p}.referral-date"),
        referring_agency_id=found.ref_id(f"{p}.referring-agency-name"),
        referral_contact=found.text(f"{p}.referring-agency-contact-details"),
        consent_status=found.code(f"{p}.referral-consent-status", ConsentStatus),
        victim_survivor_risk=found.code(f"{p}.victim-survivor-risk-level", RiskLevel),
        practitioner_risk=found.code(f"{p}.practitioner-risk-level", RiskLevel),
        key_risk_factors=_read_factors(found, f"{rationale}.key-risk-factors", protective=False),
        key_protective_factors=_read_factors(found, f"{rationale}.key-protective-factors", protective=True),
        rationale=found.text(f"{rationale}.rationale"),
        prior_actions=found.text("3a.part1.prior-responses.actions-taken"),
        agencies_involved=_read_involvement(found, "3a.part1.prior-responses.agencies-involved", "involvement"),
    )
    inputs = tuple(
        RfiInput(row.code("3a.part2.rfis.organisation", AgencyType), row.names("3a.part2.rfis.organisation-name")[0],
                 row.text("3a.part2.rfis.input"), row.date("3a.part2.rfis.input-date"))
        for row in found.rows("3a.part2.rfis")
    )
    meeting = _read_initial_meeting(found) if found.values("3a.part3.a.meeting-date") else None
    return IntakeForm(referral, _read_notices(found, people), inputs, meeting)


def _read_notices(found: Answers, people: dict[str, SubjectRole]) -> tuple[CoordinationNotice, ...]:
    p = "3a.part1.additional"
    person_for = {
        "victim-survivor": found.ref_id("3a.part1.referral.victim-survivor-name"),
        "puv": next((pid for pid, role in people.items() if role is SubjectRole.PERSON_USING_VIOLENCE), None),
    }
    notices = []
    for key, person_id in person_for.items():
        informed = found.flag(f"{p}.{key}-informed")
        if informed is not None and person_id:
            notices.append(CoordinationNotice(person_id, informed, found.date(f"{p}.{key}-informed-date"), found.text(f"{p}.{key}-not-informed-reason")))
    return tuple(notices)


def _read_initial_meeting(found: Answers) -> Meeting:
    p = "3a.part3.a"
    return Meeting(
        kind=MeetingKind.INITIAL,
        meeting_date=found.date(f"{p}.meeting-date"),
        attendance=_read_attendance(found, p),
        multi_agency_risk=found.code(f"{p}.multi-agency-risk-level", RiskLevel),
        rationale=found.text(f"{p}.rationale"),
        immediate_safety_concerns=found.text(f"{p}.immediate-safety-concerns"),
        key_dates=found.text(f"{p}.other-information"),
        strategy_supports=found.text("3a.part3.b.supports"),
        strategy_puv_visibility=found.text("3a.part3.b.puv-visibility"),
        strategy_other=found.text("3a.part3.b.other-risk-management"),
        can_close=bool(found.flag("3a.part3.case-can-be-closed")),
        next_meeting=found.date("3a.part3.next-meeting-date"),
    )


# -- 3B ------------------------------------------------------------------------------------------


def review_to_fhir(case: MultiAgencyCase, index: int) -> dict:
    """The 3B response for case.meetings[index] (a review), with the previous meeting summarised."""
    m, previous = case.meetings[index], case.meetings[index - 1]
    victim = _victim(case)
    changes = (("victim-survivor", m.victim_survivor_change), ("puv", m.puv_change), ("children", m.children_change))
    prev = "3b.part1.previous-meeting"
    part1 = a.group(
        "3b.part1",
        a.answer("3b.part1.victim-survivor-name", a.ref("Patient", victim.id, victim.name)),
        a.answer("3b.part1.puv-name", *(a.ref("Patient", x.id, x.name) for x in _people(case, SubjectRole.PERSON_USING_VIOLENCE))),
        a.answer("3b.part1.meeting-date", a.when(m.meeting_date)),
        *_attendance_items("3b.part1", m.attendance),
        a.group(
            prev,
            a.answer(f"{prev}.date", a.when(previous.meeting_date)),
            a.answer(f"{prev}.victim-survivor-risk-level", a.code(previous.victim_survivor_risk)),
            a.answer(f"{prev}.multi-agency-risk-level", a.code(previous.multi_agency_risk)),
            a.answer(f"{prev}.rationale", a.text(previous.rationale)),
        ),
    )
    part2 = a.group("3b.part2", a.rows("3b.part2.agency-updates", [
        (
            a.answer("3b.part2.agency-updates.organisation", a.code(u.organisation_type)),
            a.answer("3b.part2.agency-updates.organisation-name", a.named(u.organisation_name)),
            a.answer("3b.part2.agency-updates.update", a.text(u.update)),
        )
        for u in m.agency_updates
    ]))
    part3 = a.group("3b.part3", *[
        item
        for key, change in changes
        if change
        for item in (
            a.answer(f"3b.part3.{key}-circumstances-changed", a.code(change.changed)),
            a.answer(f"3b.part3.{key}-circumstances-details", a.text(change.details)),
        )
    ])
    part4 = a.group(
        "3b.part4",
        a.answer("3b.part4.high-risk-factors-changed", a.text(m.high_risk_factor_changes)),
        _factor_rows("3b.part4.new-risk-factors", m.new_risk_factors, protective=False),
        a.answer("3b.part4.protective-factors-changed", a.text(m.protective_factor_changes)),
        _factor_rows("3b.part4.new-protective-factors", m.new_protective_factors, protective=True),
    )
    part5 = a.group(
        "3b.part5",
        a.answer("3b.part5.victim-survivor-risk-level", a.code(m.victim_survivor_risk)),
        a.answer("3b.part5.multi-agency-risk-level", a.code(m.multi_agency_risk)),
        a.answer("3b.part5.rationale", a.text(m.rationale)),
        a.answer("3b.part5.case-can-be-closed", a.flag(m.can_close)),
        a.answer("3b.part5.next-meeting-date", a.when(m.next_meeting)),
    )
    author = case.team.lead_agency()
    return _response(f"{case.id}-3b-{index}", "3b", case, m.meeting_date, author, "completed", [part1, part2, part3, part4, part5])


def review_from_fhir(response: dict) -> Meeting:
    found = Answers(response["item"])

    def change(key: str) -> CircumstanceChange | None:
        changed = found.code(f"3b.part3.{key}-circumstances-changed", YesNoUnknown)
        return CircumstanceChange(changed, found.text(f"3b.part3.{key}-circumstances-details")) if changed else None

    return Meeting(
        kind=MeetingKind.REVIEW,
        meeting_date=found.date("3b.part1.meeting-date"),
        attendance=_read_attendance(found, "3b.part1"),
        multi_agency_risk=found.code("3b.part5.multi-agency-risk-level", RiskLevel),
        rationale=found.text("3b.part5.rationale"),
        victim_survivor_risk=found.code("3b.part5.victim-survivor-risk-level", RiskLevel),
        agency_updates=tuple(
            AgencyUpdate(row.code("3b.part2.agency-updates.organisation", AgencyType),
                         (row.names("3b.part2.agency-updates.organisation-name") or [""])[0],
                         row.text("3b.part2.agency-updates.update"))
            for row in found.rows("3b.part2.agency-updates")
        ),
        victim_survivor_change=change("victim-survivor"),
        puv_change=change("puv"),
        children_change=change("children"),
        high_risk_factor_changes=found.text("3b.part4.high-risk-factors-changed"),
        new_risk_factors=_read_factors(found, "3b.part4.new-risk-factors", protective=False),
        protective_factor_changes=found.text("3b.part4.protective-factors-changed"),
        new_protective_factors=_read_factors(found, "3b.part4.new-protective-factors", protective=True),
        can_close=bool(found.flag("3b.part5.case-can-be-closed")),
        next_meeting=found.date("3b.part5.next-meeting-date"),
    )


# -- 3C ------------------------------------------------------------------------------------------


def closure_to_fhir(case: MultiAgencyCase) -> dict:
    c = case.closure
    victim = _victim(case)
    part_a = a.group(
        "3c.a",
        a.answer("3c.a.victim-survivor-name", a.ref("Patient", victim.id, victim.name)),
        a.answer("3c.a.puv-name", *(a.ref("Patient", x.id, x.name) for x in _people(case, SubjectRole.PERSON_USING_VIOLENCE))),
        a.answer("3c.a.closure-date", a.when(c.closure_date)),
        a.answer("3c.a.multi-agency-risk-level", a.code(c.multi_agency_risk)),
        a.answer("3c.a.victim-survivor-risk-level", a.code(c.victim_survivor_risk)),
        a.answer("3c.a.victim-survivor-agrees", a.code(c.victim_survivor_agrees)),
        a.answer("3c.a.victim-survivor-agrees-details", a.text(c.agreement_details)),
        a.answer("3c.a.protective-factors", *(a.code(f) for f in sorted(c.protective_factors))),
        a.answer("3c.a.protective-factors-other", a.text(c.protective_factors_other)),
        a.answer("3c.a.safety-measures", *(a.code(s) for s in sorted(c.safety_measures))),
        a.answer("3c.a.safety-measures-other", a.text(c.safety_measures_other)),
        a.answer("3c.a.rationale", a.text(c.rationale)),
        _involvement_rows("3c.a.agencies-staying-involved", c.agencies_staying_involved, "expected-involvement"),
    )
    part_b = a.group(
        "3c.b",
        a.answer("3c.b.closure-note", a.text(c.closure_note)),
        a.answer("3c.b.author", a.named(c.author.name)),
        a.answer("3c.b.author-date", a.when(c.author.signed_on)),
        a.answer("3c.b.reviewer-approver", a.named(c.reviewer.name)),
        a.answer("3c.b.reviewer-approver-date", a.when(c.reviewer.signed_on)),
    )
    return _response(f"{case.id}-3c", "3c", case, c.closure_date, case.team.lead_agency(), "completed", [part_a, part_b])


def closure_from_fhir(response: dict) -> Closure:
    found = Answers(response["item"])
    return Closure(
        closure_date=found.date("3c.a.closure-date"),
        multi_agency_risk=found.code("3c.a.multi-agency-risk-level", RiskLevel),
        victim_survivor_risk=found.code("3c.a.victim-survivor-risk-level", RiskLevel),
        victim_survivor_agrees=found.code("3c.a.victim-survivor-agrees", YesNoUnknown),
        rationale=found.text("3c.a.rationale"),
        closure_note=found.text("3c.b.closure-note"),
        author=Signature(found.names("3c.b.author")[0], found.date("3c.b.author-date")),
        reviewer=Signature(found.names("3c.b.reviewer-approver")[0], found.date("3c.b.reviewer-approver-date")),
        agreement_details=found.text("3c.a.victim-survivor-agrees-details"),
        protective_factors=frozenset(found.codes("3c.a.protective-factors", ProtectiveFactor)),
        protective_factors_other=found.text("3c.a.protective-factors-other"),
        safety_measures=frozenset(found.codes("3c.a.safety-measures", SafetyMeasure)),
        safety_measures_other=found.text("3c.a.safety-measures-other"),
        agencies_staying_involved=_read_involvement(found, "3c.a.agencies-staying-involved", "expected-involvement"),
    )


def response_date(response: dict) -> date:
    return parse_date(response["authored"])
