"""An agency's system without Kafka: sends with `POST /fhir/$process-message`, receives from the
inbox (long poll) and acknowledges. Same shape as `kafka_agencies.AgencyOnKafka`, so an
`RfiExchange` can drive either."""

from __future__ import annotations

import httpx2 as httpx
import orjson

from tests.support.agency_systems import AgencySystem, bearer

FORM = {"content-type": "application/x-www-form-urlencoded"}
FHIR = {"content-type": "application/fhir+json"}


class AgencyOverHttps:
    def __init__(self, base_url: str, agency_id: str, system: AgencySystem, scope: str = "system/Task.cru"):
        self.agency_id = agency_id
        self.http = httpx.Client(base_url=base_url, timeout=60)
        answer = self.http.post("/auth/token", data=system.token_form(f"{base_url}/auth/token", scope), headers=FORM)
        answer.raise_for_status()
        self.headers = bearer(answer.json()["access_token"])

    def send(self, bundle: dict, case_id: str) -> None:
        answer = self.http.post("/fhir/$process-message", content=orjson.dumps(bundle), headers={**FHIR, **self.headers})
        answer.raise_for_status()

    def flush(self) -> None:
        """Each send is acknowledged when it returns."""

    def received(self, wait_seconds: float = 0.2) -> list[tuple[dict, dict]]:
        answer = self.http.get(f"/api/v1/inbox?max=500&wait={wait_seconds}", headers=self.headers)
        answer.raise_for_status()
        messages = answer.json()["messages"]
        newest: dict[str, tuple[int, str]] = {}
        for m in messages:
            partition, offset = m["id"].split("-")
            newest[partition] = max(newest.get(partition, (-1, "")), (int(offset), m["id"]))
        for _, entry_id in newest.values():
            self.http.post(f"/api/v1/inbox/{entry_id}/ack", headers=self.headers).raise_for_status()
        return [({"message-id": m["message_id"], "event": m["event"], "correlation-id": m["correlation_id"]}, m["bundle"])
                for m in messages]

    def close(self) -> None:
        self.http.close()
