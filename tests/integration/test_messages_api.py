"""Agencies without Kafka: send over REST ($process-message), receive from the inbox, acknowledge.

The gateway's worker runs beside the API, as under `gateway serve`, relaying the outbox onto the
configured transport (the embedded queue here), from which the inbox reads.
"""

import time

import orjson
import pytest

from gateway.domain.vocabulary import InformationCategory, MessageEvent
from gateway.messaging import bundles
from tests.support import cases
from tests.support.agency_systems import AgencySystem, bearer, get_token
from tests.support.cases import NOW


@pytest.fixture
def client(anonymous_client):
    """These tests send their own tokens, or none."""
    return anonymous_client


FHIR = {"content-type": "application/fhir+json"}
NONE = frozenset()


@pytest.fixture
def agencies(services, client):
    """dfv-logan and qps as registered systems with tokens; the case open; the worker running."""
    services.rfis.clock = lambda: NOW
    cases.open_case(services)
    tokens = {}
    for agency in ("dfv-logan", "qps"):
        system = AgencySystem(f"{agency}-system")
        services.identity.clients.add(system.client_id, agency, "system/Task.cru", jwks=system.jwks)
        tokens[agency] = bearer(get_token(client, system, "system/Task.cru"))
    from gateway.messaging.commands import ensure_topics

    ensure_topics(services)
    worker = services.worker()
    worker.start()
    yield tokens
    worker.stop()


def send(client, token, event, sender, destination, rfi, **changes) -> tuple[int, dict]:
    bundle = orjson.loads(cases.message(event, sender, destination, rfi, **changes).value)
    answer = client.post("/fhir/$process-message", content=orjson.dumps(bundle), headers={**FHIR, **token})
    return answer.status_code, answer.json()


def inbox(client, token, wait: float = 5) -> list[dict]:
    answer = client.get(f"/api/v1/inbox?wait={wait}", headers=token)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"]


def test_an_rfi_round_trip_over_https(client, agencies):
    rfi = cases.request("rfi-1")
    status, report = send(client, agencies["dfv-logan"], MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)
    assert status == 200 and report["issue"][0]["diagnostics"] == "routed"

    [received] = inbox(client, agencies["qps"])
    assert received["event"] == "rfi-request"
    assert bundles.parse(orjson.dumps(received["bundle"])).focus_of("Task")["id"] == "rfi-1"
    assert inbox(client, agencies["qps"], wait=0)[0]["id"] == received["id"]  # handed out again until acknowledged
    assert client.post(f"/api/v1/inbox/{received['id']}/ack", headers=agencies["qps"]).status_code == 204
    assert inbox(client, agencies["qps"], wait=0) == []

    answer = cases.answered(rfi, (InformationCategory.CRIMINAL_HISTORY, "Two prior DV incidents", NONE))
    status, _ = send(client, agencies["qps"], MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", answer)
    assert status == 200
    [response] = inbox(client, agencies["dfv-logan"])
    assert response["event"] == "rfi-response" and response["correlation_id"]
    assert "Two prior DV incidents" in orjson.dumps(response["bundle"]).decode()


def test_a_message_sent_twice_over_https_is_handled_once(client, agencies):
    rfi = cases.request("rfi-1")
    bundle = orjson.loads(cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi).value)
    first = client.post("/fhir/$process-message", content=orjson.dumps(bundle), headers={**FHIR, **agencies["dfv-logan"]})
    again = client.post("/fhir/$process-message", content=orjson.dumps(bundle), headers={**FHIR, **agencies["dfv-logan"]})
    assert (first.headers["X-Message-Outcome"], again.headers["X-Message-Outcome"]) == ("routed", "duplicate")
    deadline = time.monotonic() + 5
    while len(received := inbox(client, agencies["qps"], wait=1)) < 1 and time.monotonic() < deadline:
        pass
    assert len(received) == 1


def test_refusals_over_https_are_the_callers_errors_with_the_element(client, agencies):
    rfi = cases.request("rfi-1", target="qh")  # requested by dfv-logan
    status, outcome = send(client, agencies["qps"], MessageEvent.RFI_REQUEST, "dfv-logan", "qh", rfi)  # with qps's token
    assert status == 403 and outcome["issue"][0]["expression"] == ["MessageHeader.sender"]
    status, outcome = send(client, agencies["qps"], MessageEvent.RFI_REQUEST, "qps", "qh", rfi)  # qps's header, dfv-logan's Task
    assert status == 403 and outcome["issue"][0]["expression"] == ["Task.requester"]
    broken = client.post("/fhir/$process-message", content=b'{"resourceType": "Bundle"}', headers={**FHIR, **agencies["qps"]})
    assert broken.status_code == 400 and broken.json()["issue"][0]["expression"] == ["Bundle.type"]


def test_the_inbox_shows_an_agency_its_own_messages_only_and_needs_a_token(client, agencies):
    send(client, agencies["dfv-logan"], MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request("rfi-1"))
    assert len(inbox(client, agencies["qps"])) == 1
    assert inbox(client, agencies["dfv-logan"], wait=0.5) == []
    assert client.get("/api/v1/inbox?wait=0").status_code == 401
    assert client.post("/api/v1/inbox/0-1/ack").status_code == 401
    assert client.post("/api/v1/inbox/not-an-id/ack", headers=agencies["qps"]).status_code == 400
