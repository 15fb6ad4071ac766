"""The `gateway` command as an operator uses it: real processes, real files."""

import re
import threading

import httpx2 as httpx
import orjson
import pytest

from gateway.store.encryption import generate_kek
from tests.support.agency_systems import AgencySystem, server_token, system_on_the_command_line
from tests.support.resources import FHIR_JSON, patient
from tests.support.server import GatewayProcess, gateway_env, run_gateway


@pytest.fixture
def env(tmp_path):
    return gateway_env(tmp_path, generate_kek())


def test_keys_generate_prints_a_usable_key(tmp_path):
    result = run_gateway(["keys", "generate"], gateway_env(tmp_path, ""))
    assert result.returncode == 0
    key = result.stdout.strip()
    assert run_gateway(["db", "upgrade"], gateway_env(tmp_path, key)).returncode == 0


def test_first_run_without_a_key_generates_a_private_dev_key(tmp_path):
    env = gateway_env(tmp_path, "")
    del env["GATEWAY_DATA_KEY"]
    result = run_gateway(["db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "data-key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "generated a development key" in result.stderr and "data-key;" in result.stderr
    assert key_file.read_text().strip() not in result.stderr  # the key itself is never logged


@pytest.mark.parametrize(
    "variables,expected",
    [
        ({"GATEWAY_DATA_KEY": "changethis"}, "well-known example value"),
        ({"GATEWAY_DATA_KEY": "too-short"}, "32 bytes"),
        ({"GATEWAY_MAX_BODY_BYTES": "lots"}, "GATEWAY_MAX_BODY_BYTES"),
        ({"GATEWAY_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "unreachable"),
    ],
)
def test_bad_configuration_is_one_readable_line(tmp_path, variables, expected):
    result = run_gateway(["db", "upgrade"], {**gateway_env(tmp_path, generate_kek()), **variables})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_key_for_an_existing_database_is_refused(tmp_path, env):
    assert run_gateway(["db", "upgrade"], env).returncode == 0
    result = run_gateway(["db", "upgrade"], {**env, "GATEWAY_DATA_KEY": generate_kek()})
    assert result.returncode == 1 and "is not the key that wrapped" in result.stderr


def test_usage_errors_exit_2(env):
    assert run_gateway(["teleport"], env).returncode == 2


def patient_writer(env, tmp_path) -> AgencySystem:
    """vicpol's system, registered on the command line, that may read and write Patients."""
    assert run_gateway(["agency", "add", "--id", "vicpol", "--name", "Victoria Police", "--type", "police", "--jurisdiction", "VIC"],
                       env).returncode == 0
    return system_on_the_command_line(env, tmp_path, "vicpol", "vicpol-cad", "system/Patient.crs")


def test_serve_answers_health_metrics_and_fhir(env, tmp_path):
    system = patient_writer(env, tmp_path)
    server = GatewayProcess(env)
    try:
        assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
        token = server_token(server.url, system, "system/Patient.crs")
        assert httpx.post(f"{server.url}/fhir/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON).status_code == 401
        created = httpx.post(f"{server.url}/fhir/Patient", content=orjson.dumps(patient(family="Tran")), headers={**FHIR_JSON, **token})
        assert created.status_code == 201
        httpx.get(f"{server.url}/fhir/Patient?name=Tran", headers=token)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'gateway_http_requests_total{method="POST",route="/fhir/{resource_type}",status="201"} 1.0' in metrics
        assert 'gateway_http_requests_total{method="POST",route="/fhir/{resource_type}",status="401"} 1.0' in metrics
    finally:
        log = server.stop()
    assert "Tran" not in log  # names in bodies and query strings never reach the log
    # one line per request: when, level, logger, then method, route template, status, time, request id
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO gateway.access POST /fhir/\{resource_type\} 201 [\d.]+ms id=[0-9a-f]{32}$",
                     log, re.MULTILINE)


def test_keys_rotate_runs_beside_a_serving_gateway(env, tmp_path):
    system = patient_writer(env, tmp_path)
    server = GatewayProcess({**env, "GATEWAY_KEY_CACHE_SECONDS": "0.5"})
    failures, done = [], threading.Event()
    try:
        token = server_token(server.url, system, "system/Patient.crs")
        ids = [
            httpx.post(f"{server.url}/fhir/Patient", content=orjson.dumps(patient(identifier=f"R{i}")), headers={**FHIR_JSON, **token}).json()["id"]
            for i in range(200)
        ]

        def keep_serving():
            with httpx.Client(base_url=server.url, headers=token) as http:
                i = 0
                while not done.is_set():
                    read = http.get(f"/fhir/Patient/{ids[i % len(ids)]}")
                    write = http.post("/fhir/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
                    if read.status_code != 200 or write.status_code != 201:
                        failures.append((read.status_code, write.status_code))
                    i += 1

        traffic = threading.Thread(target=keep_serving)
        traffic.start()
        rotated = run_gateway(["keys", "rotate", "--batch", "50"], {**env, "GATEWAY_KEY_CACHE_SECONDS": "0.5"})
        done.set()
        traffic.join()
        assert rotated.returncode == 0, rotated.stderr
        assert not failures
        status = run_gateway(["keys", "status"], env).stdout.splitlines()
        active = [line for line in status if "active" in line]
        retired = [line for line in status if "retired" in line]
        assert len(active) == 1 and len(retired) == 1
        assert "0 stored versions" in retired[0] and "0 signing keys" in retired[0]
        assert set(re.findall(r"(\d+) [a-z]", retired[0].split("retired", 1)[1])) == {"0"}  # nothing left under it
        for rid in ids:
            assert httpx.get(f"{server.url}/fhir/Patient/{rid}", headers=token).status_code == 200
    finally:
        done.set()
        server.stop()


def test_audit_verify_and_sign_as_an_operator_runs_them(env):
    from sqlalchemy import create_engine, text

    assert run_gateway(["audit", "sign"], env).stdout.strip() == "the ledger is empty; nothing to sign"
    fresh = run_gateway(["audit", "verify"], env)
    assert fresh.returncode == 0 and "ledger intact: 0 entries" in fresh.stdout
    database = create_engine(f"sqlite:///{env['GATEWAY_DATA_DIR']}/gateway.db")
    with database.begin() as conn:  # a forged entry slipped in behind the gateway's back
        conn.execute(text("INSERT INTO audit_chain VALUES (1, 'forged', 1, :d, :c, 0)"), {"d": "0" * 64, "c": "1" * 64})
    database.dispose()
    tampered = run_gateway(["audit", "verify"], env)
    assert tampered.returncode == 1 and "TAMPERED" in tampered.stdout
    assert "entry 1: chain broken" in tampered.stderr
