"""Security events hold no secrets and cannot forge log lines."""

import logging

from gateway.auth.security_events import SecurityEvent, SecurityEvents, claimed_id


class RecordingDatabase:
    def __init__(self):
        self.rows = []

    def run_write(self, job):
        class Conn:
            def execute(conn, statement):
                self.rows.append(statement.compile().params)

        return job(Conn())


def test_claimed_ids_are_kept_only_when_they_look_like_ids():
    assert claimed_id("vicpol-cad") == "vicpol-cad"
    assert claimed_id("eyJhbGciOi..." * 20) is None  # too long: not an id (and maybe a token)
    assert claimed_id("x\nFAKE security event") is None
    assert claimed_id(42) is None


def test_an_event_is_one_log_line_and_one_row(caplog):
    db = RecordingDatabase()
    caplog.set_level(logging.WARNING, "gateway.security")
    SecurityEvents(db).record(
        SecurityEvent("token-refused", "bad-signature", "line one\nsecurity event kind=forged", client_id="a\nb", source="10.0.0.1")
    )
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert "client=-" in caplog.records[0].getMessage()
    row = db.rows[0]
    assert row["detail"] == "line one?security event kind=forged" and row["client_id"] is None and row["source"] == "10.0.0.1"
