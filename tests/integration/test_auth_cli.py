"""`gateway agency|client|keys rotate-signing` as an operator runs them, also beside a serving gateway."""

import json
import time

import httpx2 as httpx
import pytest
from joserfc import jws

from gateway.store.encryption import generate_kek
from tests.support.agency_systems import FORM, AgencySystem, bearer
from tests.support.server import GatewayProcess, gateway_env, run_gateway


@pytest.fixture
def env(tmp_path):
    return gateway_env(tmp_path, generate_kek(), GATEWAY_IDENTITY_CACHE_SECONDS="0.3")


def ok(args, env) -> str:
    result = run_gateway(args, env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(args, env) -> str:
    result = run_gateway(args, env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def add_vicpol(env) -> None:
    ok(["agency", "add", "--id", "vicpol", "--name", "Victoria Police", "--type", "police", "--jurisdiction", "VIC",
        "--prescribed", "information-sharing-entity", "risk-assessment-entity"], env)


def test_agencies_and_clients_are_registered_listed_and_refused_in_one_line(tmp_path, env):
    add_vicpol(env)
    assert "police" in ok(["agency", "list"], env) and "information-sharing-entity,risk-assessment-entity" in ok(["agency", "list"], env)
    assert "'qld-prescribed-entity' is a status under QLD law" in one_line_error(
        ["agency", "add", "--id", "x", "--name", "X", "--type", "health", "--jurisdiction", "VIC", "--prescribed", "qld-prescribed-entity"], env
    )
    assert run_gateway(["agency", "add", "--id", "x", "--name", "X", "--type", "spaceship", "--jurisdiction", "VIC"], env).returncode == 2

    system = AgencySystem("vicpol-cad")
    jwks = tmp_path / "vicpol.jwks"
    jwks.write_text(json.dumps(system.jwks))
    added = ok(["client", "add", "--agency", "vicpol", "--client-id", "vicpol-cad", "--jwks", str(jwks), "--scopes", "system/Task.rs admin"], env)
    assert "registered client vicpol-cad of agency vicpol: keys vicpol-cad-1" in added
    assert "vicpol-cad" in ok(["client", "list"], env)

    assert "agency nowhere is not registered" in one_line_error(
        ["client", "add", "--agency", "nowhere", "--client-id", "c2", "--jwks", str(jwks), "--scopes", "admin"], env
    )
    private = tmp_path / "private.jwks"
    private.write_text(json.dumps({"keys": [system.key.as_dict(private=True)]}))
    assert "register public keys only" in one_line_error(
        ["client", "add", "--agency", "vicpol", "--client-id", "c3", "--jwks", str(private), "--scopes", "admin"], env
    )
    assert "only system/ scopes" in one_line_error(
        ["client", "add", "--agency", "vicpol", "--client-id", "c4", "--jwks", str(jwks), "--scopes", "user/Task.rs"], env
    )
    assert "client ghost is not registered" in one_line_error(["client", "revoke", "--client-id", "ghost"], env)


def token(server: GatewayProcess, system: AgencySystem, scope: str = "admin") -> httpx.Response:
    url = f"{server.url}/auth/token"
    return httpx.post(url, data=system.token_form(url, scope), headers=FORM)


def test_commands_work_beside_a_serving_gateway(tmp_path, env):
    server = GatewayProcess(env)
    try:
        add_vicpol(env)
        system = AgencySystem("vicpol-cad", "ES384")
        (tmp_path / "cad.jwks").write_text(json.dumps(system.jwks))
        ok(["client", "add", "--agency", "vicpol", "--client-id", "vicpol-cad", "--jwks", str(tmp_path / "cad.jwks"), "--scopes", "admin"], env)

        first = token(server, system)
        assert first.status_code == 200, first.text
        access = first.json()["access_token"]
        assert httpx.get(f"{server.url}/admin/agencies", headers=bearer(access)).json()[0]["id"] == "vicpol"

        rotated = ok(["keys", "rotate-signing"], env)
        new_kid = rotated.split("signed with key ")[1].split()[0]
        time.sleep(0.4)  # the server's cached signing key expires
        second = token(server, system).json()["access_token"]
        assert jws.extract_compact(second.encode()).headers()["kid"] == new_kid
        assert httpx.get(f"{server.url}/admin/agencies", headers=bearer(access)).status_code == 200  # the old token still works

        assert "revoked client vicpol-cad" in ok(["client", "revoke", "--client-id", "vicpol-cad"], env)
        time.sleep(0.4)
        assert httpx.get(f"{server.url}/admin/agencies", headers=bearer(second)).status_code == 401
        assert token(server, system).json()["error"] == "invalid_client"
    finally:
        log = server.stop()
    assert access not in log and second not in log
    assert "security event kind=token-refused reason=revoked-client client=vicpol-cad" in log
