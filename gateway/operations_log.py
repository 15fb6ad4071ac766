"""The operator's log: one format for every process, and one line per event a run is expected to
survive (a broker restart), so what needs a person at 3 a.m. stands out."""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise
    for handler in logging.getLogger().handlers:
        handler.addFilter(BrokerConnectionLoss())
    _skip_unlogged_record_fields()


class BrokerConnectionLoss(logging.Filter):
    """kafka-python logs a socket the broker closed (a restart, a network blip) with its traceback,
    though it reconnects by itself and says so. The error stays, as one line naming the exception;
    any other exception the library logs keeps its traceback, since that one may be a fault.
    A handler filter: it sees records from every kafka.* logger, which a logger filter would not."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and record.name.startswith("kafka."):
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", None
            record.exc_info = record.exc_text = None
        return True


def _skip_unlogged_record_fields() -> None:
    """The format above names no source line, thread or process, so no record gathers them (the
    logging HOWTO's "Optimization" switches): the access log makes a record per request, and
    finding the caller's frame alone was about 1% of a create's time."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
