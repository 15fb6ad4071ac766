"""Every mapping round-trips without loss, and everything it emits is valid FHIR R4B."""

import pytest
from fhir.resources.R4B import get_fhir_model_class

from gateway.demo import scenario
from gateway.domain.events import RedFlagRaised
from gateway.mappings import (
    care_plan,
    care_team,
    consent,
    episode,
    flag,
    observation,
    organization,
    patient,
    risk_assessment,
    rfi,
    safety_action,
)
from gateway.mappings.case_resources import case_resources


@pytest.fixture(scope="module")
def worked():
    return scenario.run().case


def valid(resource: dict) -> dict:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def test_agencies(worked):
    for agency in scenario.AGENCIES:
        assert organization.from_fhir(valid(organization.to_fhir(agency))) == agency


def test_people_with_roles_identity_and_ages(worked):
    for person in worked.people:
        assert patient.from_fhir(valid(patient.to_fhir(person))) == person


def test_team_roles_representatives_and_confidentiality(worked):
    resource = valid(care_team.to_fhir(worked.team, worked.id, "vs-mai"))
    assert care_team.from_fhir(resource) == worked.team


def test_case_record(worked):
    record = episode.CaseRecord.of(worked)
    assert record.closure_date is not None and record.lead_agency_id == "dfv-logan"
    assert episode.from_fhir(valid(episode.to_fhir(record))) == record


def test_every_risk_determination_with_its_factors(worked):
    history = worked.risk_history()
    assert any(d.factors for d in history)
    for i, determination in enumerate(history):
        emitted = [valid(r) for r in risk_assessment.to_fhir(determination, f"ra-{i}", "vs-mai", worked.id)]
        observations = {o["id"]: o for o in emitted[1:]}
        assert risk_assessment.from_fhir(emitted[0], observations) == determination


def test_factor_detail_survives(worked):
    breach = next(f for d in worked.risk_history() for f in d.factors if f.frequency)
    assert observation.from_fhir(valid(observation.to_fhir(breach, "o1", "puv-dan", worked.meetings[1].meeting_date))) == breach


def test_safety_actions_with_feedback(worked):
    assert any(a.feedback for a in worked.actions)
    for action in worked.actions:
        assert safety_action.from_fhir(valid(safety_action.to_fhir(action, worked.id, "vs-mai"))) == action


def test_safety_plan_lists_its_actions(worked):
    ids = [a.id for a in worked.actions]
    assert care_plan.from_fhir(valid(care_plan.to_fhir(worked.id, "vs-mai", ids))) == ids


def test_rfis_with_answers_and_labels(worked):
    assert any(r.responses for r in worked.rfis) and any(not r.responses for r in worked.rfis)
    for request in worked.rfis:
        resource = valid(rfi.to_fhir(request, worked.id))
        assert {s["code"] for s in resource["meta"]["security"]} == {c.value for c in request.categories}
        assert rfi.from_fhir(resource) == request


def test_consent_records(worked):
    assert {c.status.value for c in worked.consents} == {"given", "unsafe-to-seek"}
    for record in worked.consents:
        assert consent.from_fhir(valid(consent.to_fhir(record))) == record


def test_red_flags(worked):
    flags = [e for e in worked.events if isinstance(e, RedFlagRaised)]
    assert flags
    for i, raised in enumerate(flags):
        assert flag.from_fhir(valid(flag.to_fhir(raised, f"f{i}", "vs-mai", "dfv-logan"))) == raised


def test_the_whole_case_is_valid_r4b_with_unique_ids(worked):
    resources = [valid(r) for r in case_resources(worked, scenario.AGENCIES)]
    keys = [(r["resourceType"], r["id"]) for r in resources]
    assert len(keys) == len(set(keys))
    assert {r["resourceType"] for r in resources} >= {
        "Organization", "Patient", "CareTeam", "EpisodeOfCare", "RiskAssessment", "Observation", "Task", "CarePlan", "Consent", "Flag"
    }


class TestFormsAsQuestionnaireResponses:
    def test_3a_intake_round_trips(self, worked):
        from gateway.mappings import questionnaire_response as qr

        response = valid(qr.intake_to_fhir(worked))
        assert response["status"] == "completed"
        roles = {p.id: p.role for p in worked.people}
        assert qr.intake_from_fhir(response, roles) == qr.IntakeForm.of(worked)

    def test_3a_is_in_progress_until_the_initial_meeting(self):
        from gateway.mappings import questionnaire_response as qr

        state = {}
        for step in scenario.steps()[:3]:
            step.run(state)
        response = valid(qr.intake_to_fhir(state["case"]))
        assert response["status"] == "in-progress"
        form = qr.intake_from_fhir(response, {p.id: p.role for p in state["case"].people})
        assert form.initial_meeting is None and len(form.rfi_inputs) == 6

    def test_every_3b_review_round_trips(self, worked):
        from gateway.mappings import questionnaire_response as qr

        for index in range(1, len(worked.meetings)):
            response = valid(qr.review_to_fhir(worked, index))
            assert qr.review_from_fhir(response) == worked.meetings[index]

    def test_3c_closure_round_trips(self, worked):
        from gateway.mappings import questionnaire_response as qr

        assert qr.closure_from_fhir(valid(qr.closure_to_fhir(worked))) == worked.closure
