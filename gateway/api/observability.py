"""Correlation ids, Prometheus metrics and the access log, as one pure ASGI middleware.

The access log names the route template (`/fhir/{resource_type}/{resource_id}`), never the
query string or body, so names and identifiers in searches do not reach the logs.
"""

import logging
import os
import re
import time
from contextvars import ContextVar

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from gateway.errors import Issue, operation_outcome

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")
access_log = logging.getLogger("gateway.access")
error_log = logging.getLogger("gateway.errors")
_SAFE_ID = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gateway_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

        self._series: dict[tuple[str, str, int], tuple] = {}  # labels() looked up once per series

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:  # routes are templates and methods few, so the series stay few
            series = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObservabilityMiddleware:
    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cid = _incoming_id(scope) or os.urandom(16).hex()  # as uuid4().hex, at a fifth of the cost
        token = correlation_id.set(cid)
        status = 0
        started = time.perf_counter()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", cid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the last line of defence: never a stack trace to the caller
            # type and message only; SQL parameters are hidden by the engine (hide_parameters)
            error_log.error("unexpected %s: %s (correlation id %s)", type(exc).__name__, exc, cid, exc_info=exc)
            if status:
                raise  # the response had started; the server closes the connection
            await _send_unexpected(send_with_id, cid)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.observe(method, route, status, elapsed)
            access_log.info("%s %s %d %.1fms id=%s", method, route, status, elapsed * 1000, cid)
            correlation_id.reset(token)


def _route_template(scope) -> str:
    """The matched path template, never the concrete path (which can carry ids)."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    return getattr(scope.get("endpoint"), "route_path", "unmatched")


def _incoming_id(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


async def _send_unexpected(send, cid: str) -> None:
    message = f"The gateway could not complete the request; quote correlation id {cid} to the operator"
    body = orjson.dumps(operation_outcome([Issue(message)], "exception"))
    headers = [(b"content-type", b"application/fhir+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
