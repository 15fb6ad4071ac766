"""Storage: encrypted at rest, bound to its row, atomic writes, key rotation under load."""

import threading

import orjson
import pytest
from sqlalchemy import select, update

from gateway.bootstrap import build_services, sealed_columns
from gateway.connectors import topics
from gateway.connectors.transport import MESSAGE_ID, DeliveredMessage, OutgoingMessage
from gateway.settings import Settings
from gateway.store.encryption import DataKeyError, generate_kek
from gateway.store.key_rotation import key_status, rotate_data_key
from gateway.store.schema import data_keys, resource_versions, resources, search_index
from tests.support.resources import FHIR_JSON, patient


def create(client, resource):
    response = client.post("/fhir/Patient", content=orjson.dumps(resource), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


def test_bodies_are_encrypted_at_rest_with_their_key_id(client, services):
    created = create(client, patient(family="Wiradjuri-Smith", identifier="ENC-1"))
    row = services.db.run_read(
        lambda conn: conn.execute(select(resource_versions).where(resource_versions.c.resource_id == created["id"])).one()
    )
    active = services.db.run_read(lambda conn: conn.execute(select(data_keys.c.kid).where(data_keys.c.active)).scalar_one())
    assert b"Wiradjuri" not in row.body and b"ENC-1" not in row.body
    assert row.key_id == active


def test_a_data_key_whose_transaction_rolled_back_seals_nothing(client, services, settings):
    """A key rotation (or first key) whose transaction fails leaves no key id behind that later
    writes would seal bodies with: those bodies could never be read by a restarted gateway."""

    def rotation_that_fails(conn):
        services.keyring.create_key(conn, activate=True)
        raise RuntimeError("the disk filled up before the rotation committed")

    with pytest.raises(RuntimeError):
        services.db.run_write(rotation_that_fails)
    created = create(client, patient(family="After-Rollback"))
    key_id = services.db.run_read(
        lambda conn: conn.execute(select(resource_versions.c.key_id).where(resource_versions.c.resource_id == created["id"])).scalar_one()
    )
    kids = services.db.run_read(lambda conn: set(conn.execute(select(data_keys.c.kid)).scalars()))
    assert key_id in kids
    restarted = build_services(settings)  # a new process: nothing cached
    try:
        assert restarted.db.run_read(lambda conn: restarted.store.current(conn, "Patient", created["id"])).body is not None
    finally:
        restarted.close()


def test_a_body_moved_onto_another_row_is_refused_not_served(client, services):
    a = create(client, patient(family="Alpha"))
    b = create(client, patient(family="Beta"))

    def move_body(conn):
        a_body = conn.execute(select(resource_versions.c.body).where(resource_versions.c.resource_id == a["id"])).scalar_one()
        conn.execute(update(resource_versions).where(resource_versions.c.resource_id == b["id"]).values(body=a_body))

    services.db.run_write(move_body)
    response = client.get(f"/fhir/Patient/{b['id']}")
    assert response.status_code == 500
    assert "Alpha" not in response.text


def test_start_up_with_the_wrong_data_key_fails_clearly(services, settings):
    wrong = Settings(**{**settings.model_dump(), "data_key": generate_kek()})
    with pytest.raises(DataKeyError, match="GATEWAY_DATA_KEY .* is not the key that wrapped"):
        build_services(wrong)


def test_a_failed_index_write_leaves_nothing_half_written(client, services, monkeypatch):
    def fail(*_args, **_kwargs):
        raise RuntimeError("index write failed")

    monkeypatch.setattr(services.store, "_reindex", fail)
    response = client.post("/fhir/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    assert response.status_code == 500
    for table in (resources, resource_versions, search_index):
        patients = select(table).where(table.c.resource_type == "Patient")
        assert services.db.run_read(lambda conn, q=patients: conn.execute(q).first()) is None


def test_key_rotation_reencrypts_everything_while_the_api_keeps_serving(client, services):
    created = [create(client, patient(identifier=f"ROT-{i}"))["id"] for i in range(120)]
    (old_key,) = key_status(services.db)
    old_kid, stored_before = old_key.kid, old_key.versions
    report = {}
    rotation = threading.Thread(
        target=lambda: report.update(
            r=rotate_data_key(services.db, services.keyring, services.settings.key_cache_seconds, batch=25)
        )
    )
    rotation.start()
    during = []
    while rotation.is_alive():  # reads and writes go on during the rotation
        during.append(create(client, patient(identifier=f"DURING-{len(during)}"))["id"])
        assert client.get(f"/fhir/Patient/{created[len(during) % len(created)]}").status_code == 200
    rotation.join()

    new_kid = report["r"].new_kid
    assert new_kid != old_kid and report["r"].reencrypted >= 120
    status = {k.kid: k for k in key_status(services.db)}
    assert status[new_kid].active and status[new_kid].versions == stored_before + len(during)
    assert status[old_kid].versions == 0 and status[old_kid].retired_at is not None
    for rid in created + during:
        assert client.get(f"/fhir/Patient/{rid}").status_code == 200


def test_key_rotation_reencrypts_the_messages_and_keys_sealed_beside_the_records(services):
    queue = services.transport
    queue.create_topics([topics.inbound("qps"), topics.outbound("qps")], partitions=1)
    queue.publish([OutgoingMessage(topics.inbound("qps"), "case-1", b"queued for the gateway", {MESSAGE_ID: "m-queued"})])
    services.db.run_write(lambda conn: services.outbox.add(
        conn, OutgoingMessage(topics.outbound("qps"), "case-1", b"waiting in the outbox", {MESSAGE_ID: "m-outbox"})))
    refused = DeliveredMessage(topics.inbound("qps"), 0, 99, "case-1", b"held as a dead letter", {MESSAGE_ID: "m-dead"})
    services.db.run_write(lambda conn: services.dead_letters.add(conn, refused, "malformed", "not a Bundle"))
    kid_before = services.identity.signing.signer().thumbprint()
    (old,) = key_status(services.db, sealed_columns())
    assert all(old.rows[name] for name in ("outbox messages", "queued messages", "dead letters", "signing keys"))

    report = rotate_data_key(services.db, services.keyring, cache_seconds=0, columns=sealed_columns())

    status = {k.kid: k for k in key_status(services.db, sealed_columns())}
    assert set(status[old.kid].rows.values()) == {0}  # nothing is left under the retired key
    assert sum(status[report.new_kid].rows.values()) == sum(old.rows.values()) == report.reencrypted
    # and everything still opens under the new one, bound to its row
    services.identity.signing._signer = None
    assert services.identity.signing.signer().thumbprint() == kid_before
    services.relay.relay_once()  # the outbox message and the dead letter's copy, published on the embedded queue
    published = queue.read(topics.outbound("qps"), {}, 10)
    assert [m.value for m in published] == [b"waiting in the outbox"]
    assert [m.value for m in queue.read(topics.DEAD_LETTER, {}, 10)] == [b"held as a dead letter"]
    [letter] = services.db.run_read(lambda conn: services.dead_letters.list(conn))
    assert services.db.run_write(lambda conn: services.dead_letters.replay(conn, letter.id))  # opens the dead letter itself
    services.relay.relay_once()
    assert [m.value for m in queue.read(topics.inbound("qps"), {}, 10)] == [b"queued for the gateway", b"held as a dead letter"]
