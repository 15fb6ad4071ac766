"""`gateway demo` works the case from the tools on the embedded default and leaves a record."""

import httpx2 as httpx

from gateway.store.encryption import generate_kek
from tests.support.agency_systems import server_token, system_on_the_command_line
from tests.support.server import GatewayProcess, gateway_env, run_gateway


def test_demo_prints_each_step_refuses_closure_at_imminent_risk_and_stores_the_case(tmp_path):
    env = gateway_env(tmp_path, generate_kek(), GATEWAY_LOG_LEVEL="WARNING")
    result = run_gateway(["demo"], env, timeout=180)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("=== Step ") == 9
    assert "REFUSED, as the tools require: The case cannot be closed: the latest multi-agency risk level is imminent" in out
    assert "multi-agency risk now: imminent" in out and "multi-agency risk now: at-risk" in out
    assert "OVERDUE" in out  # the youth-justice RFI was never answered
    assert "Case case-logan-0427: closed" in out

    # the lead agency's system reads the record; another agency's sees none of the case
    scopes = "system/*.rs"
    lead = system_on_the_command_line(env, tmp_path, "dfv-logan", "dfv-logan-crm", scopes)
    added = run_gateway(["agency", "add", "--id", "other-service", "--name", "Another service", "--type", "health", "--jurisdiction", "QLD"], env)
    assert added.returncode == 0, added.stderr
    outsider = system_on_the_command_line(env, tmp_path, "other-service", "other-crm", scopes)
    server = GatewayProcess(env)
    try:
        token = server_token(server.url, lead, scopes)
        assert httpx.get(f"{server.url}/fhir/EpisodeOfCare/case-logan-0427").status_code == 401
        other = server_token(server.url, outsider, scopes)
        assert httpx.get(f"{server.url}/fhir/EpisodeOfCare/case-logan-0427", headers=other).status_code == 403
        assert httpx.get(f"{server.url}/fhir/Task", params={"_count": 0}, headers=other).json()["total"] == 0
        case = httpx.get(f"{server.url}/fhir/EpisodeOfCare/case-logan-0427", headers=token).json()
        assert case["status"] == "finished" and case["managingOrganization"]["reference"] == "Organization/dfv-logan"
        risks = httpx.get(f"{server.url}/fhir/RiskAssessment", params={"risk": "imminent", "_count": 0}, headers=token).json()
        assert risks["total"] >= 1
        rfis = httpx.get(f"{server.url}/fhir/Task", params={"code": "rfi", "_count": 0}, headers=token).json()
        assert rfis["total"] == 7
        # one version per real change: an agency never changes, the intake form changes at each 3A step
        assert httpx.get(f"{server.url}/fhir/Organization/qps/_history", headers=token).json()["total"] == 1
        intake_versions = httpx.get(f"{server.url}/fhir/QuestionnaireResponse/case-logan-0427-3a/_history", headers=token).json()["total"]
        assert 3 <= intake_versions <= 5
    finally:
        server.stop()
