"""The operator's log keeps a broker's dropped connection to one line and every other traceback whole."""

import io
import logging

import pytest

from gateway.operations_log import FORMAT, BrokerConnectionLoss


@pytest.fixture
def operator_log():
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(BrokerConnectionLoss())
    loggers = [logging.getLogger(name) for name in ("kafka.net.transport", "gateway.outbox")]
    for logger in loggers:
        logger.addHandler(handler)
    yield text
    for logger in loggers:
        logger.removeHandler(handler)


def log_failure(logger: str, exc: BaseException) -> None:
    try:
        raise exc
    except BaseException:
        logging.getLogger(logger).exception("%s: Error receiving network data closing socket", "<transport>")


def test_a_connection_the_broker_reset_is_one_line_naming_the_error(operator_log):
    log_failure("kafka.net.transport", ConnectionResetError(104, "Connection reset by peer"))
    lines = operator_log.getvalue().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert lines[0].endswith("ERROR kafka.net.transport <transport>: Error receiving network data closing socket"
                             " (ConnectionResetError: [Errno 104] Connection reset by peer)")


def test_any_other_library_failure_keeps_its_traceback(operator_log):
    log_failure("kafka.net.transport", ValueError("a bug in the client"))
    assert "Traceback" in operator_log.getvalue() and "ValueError: a bug in the client" in operator_log.getvalue()


def test_the_gateways_own_socket_errors_keep_their_traceback(operator_log):
    log_failure("gateway.outbox", ConnectionResetError(104, "Connection reset by peer"))
    assert "Traceback" in operator_log.getvalue()
