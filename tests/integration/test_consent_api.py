"""Asking for a consent decision over HTTP and on the command line."""

import json

from tests.support.server import gateway_env, run_gateway
from gateway.store.encryption import generate_kek

REQUEST = {
    "jurisdiction": "VIC",
    "purpose": "risk-management",
    "requester": {"agency_type": "police", "prescribed": ["information-sharing-entity", "risk-assessment-entity"]},
    "releaser": {"agency_type": "health", "prescribed": ["information-sharing-entity"]},
    "subject_role": "adult-victim-survivor",
    "category": "mental-health",
    "excluded": [],
    "consent": {"status": "refused", "recipients": [], "date": "2026-11-01T00:00:00Z"},
    "serious_threat": True,
    "child_at_risk": False,
}


def test_the_api_answers_a_decision_with_basis_rule_and_obligations(client):
    response = client.post("/api/v1/consent/decisions", json=REQUEST)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "permit" and body["rule"] == "VIC-serious-threat"
    assert "s144N" in body["legal_basis"] and "inform-victim-survivor-of-sharing-without-consent-when-safe" in body["obligations"]
    assert body["policy"] == "VIC@2026-11-24.1" and body["redactions"] == []


def test_the_api_refuses_unknown_values_naming_the_field(client):
    response = client.post("/api/v1/consent/decisions", json={**REQUEST, "category": "shoe-size"})
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["body.category"]
    nested = client.post("/api/v1/consent/decisions", json={**REQUEST, "requester": {"agency_type": "astrologer"}})
    assert nested.status_code == 422 and nested.json()["issue"][0]["expression"] == ["body.requester.agency_type"]


def test_the_cli_reads_stdin_and_writes_the_same_decision(tmp_path):
    import subprocess

    from tests.support.server import GATEWAY

    env = gateway_env(tmp_path, generate_kek())
    done = subprocess.run([GATEWAY, "consent", "decide"], input=json.dumps(REQUEST), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule"] == "VIC-serious-threat"
    bad = subprocess.run([GATEWAY, "consent", "decide"], input=json.dumps({**REQUEST, "purpose": "curiosity"}), env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "purpose" in bad.stderr


def test_policies_are_listed(tmp_path):
    listed = run_gateway(["consent", "policies"], gateway_env(tmp_path, generate_kek()))
    assert listed.returncode == 0
    assert "VIC@2026-11-24.1" in listed.stdout and "VIC-person-using-violence" in listed.stdout
