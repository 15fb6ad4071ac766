"""Which case a resource belongs to, read from its content alone (gateway.store.case_links.links_of)."""

from gateway.store.case_links import Links, links_of
from tests.support.resources import patient, rfi_task, risk_assessment


def test_a_resource_that_names_a_case_belongs_to_it_wherever_it_names_it():
    assert links_of("Task", "t1", rfi_task(focus="EpisodeOfCare/c1")) == Links(cases=("c1",))
    basis = {**risk_assessment(), "basis": [{"reference": "EpisodeOfCare/c2"}, {"reference": "Observation/o1"}]}
    assert links_of("RiskAssessment", "r1", basis).cases == ("c2",)
    flag = {"resourceType": "Flag", "extension": [{"url": "x", "valueReference": {"reference": "https://gw.example.org/fhir/EpisodeOfCare/c3/_history/2"}}],
            "subject": {"reference": "Patient/p1"}}
    assert links_of("Flag", "f1", flag) == Links(cases=("c3",))  # absolute, versioned: still the case; not the person's


def test_a_case_belongs_to_itself_with_its_people_and_teams():
    case = {"resourceType": "EpisodeOfCare", "patient": {"reference": "Patient/vs"},
            "extension": [{"url": "case-subject", "valueReference": {"reference": "Patient/vs"}},
                          {"url": "case-subject", "valueReference": {"reference": "Patient/puv"}},
                          {"url": "referring-agency", "valueReference": {"reference": "Organization/qps"}}],
            "team": [{"reference": "CareTeam/c1-team"}]}
    assert links_of("EpisodeOfCare", "c1", case) == Links(cases=("c1",), people=("vs", "puv"), teams=("c1-team",))


def test_a_team_lists_the_agencies_among_its_participants():
    team = {"resourceType": "CareTeam", "subject": {"reference": "Patient/vs"}, "managingOrganization": [{"reference": "Organization/boss"}],
            "participant": [{"member": {"reference": "Organization/qps"}},
                            {"member": {"reference": "Practitioner/dr"}, "onBehalfOf": {"reference": "Organization/qh"}}]}
    assert links_of("CareTeam", "t", team) == Links(agencies=("qps", "qh"))


def test_a_resource_about_one_person_that_names_no_case_belongs_to_the_persons_cases():
    consent = {"resourceType": "Consent", "patient": {"reference": "Patient/puv"}}
    assert links_of("Consent", "k", consent) == Links(person="puv")
    factor = {"resourceType": "Observation", "subject": {"reference": "Patient/vs"}}
    assert links_of("Observation", "o", factor) == Links(person="vs")
    assert links_of("Task", "t", rfi_task(subject="Patient/vs", focus="EpisodeOfCare/c1")).person is None  # its case decides


def test_the_registry_profiles_and_the_ledger_are_never_case_data():
    ledger = {"resourceType": "AuditEvent", "entity": [{"what": {"reference": "EpisodeOfCare/c1"}}]}
    assert links_of("AuditEvent", "a", ledger) == Links()
    assert links_of("Organization", "qps", {"resourceType": "Organization", "partOf": {"reference": "EpisodeOfCare/c1"}}) == Links()
    assert links_of("Patient", "p", patient()) == Links()


def test_references_that_are_not_ids_are_ignored():
    odd = rfi_task(focus="urn:uuid:1234")
    odd["basedOn"] = [{"reference": "#contained"}, {"reference": "EpisodeOfCare/" + "x" * 65}]
    assert links_of("Task", "t", odd).cases == ()
