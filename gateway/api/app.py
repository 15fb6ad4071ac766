"""Build the FastAPI application around already-built services (see gateway.bootstrap)."""

from fastapi import FastAPI

from gateway.api import admin, auth, cases, consent, errors, fhir, health, messages
from gateway.api.observability import ObservabilityMiddleware


def create_app(services) -> FastAPI:
    app = FastAPI(
        title="Family-violence interoperability gateway",
        version=services.version,
        description="FHIR R4B exchange between agencies working one family-violence case.",
        # the gateway's own metrics and access log (gateway.api.observability) are its telemetry;
        # FastAPI's OpenTelemetry hooks would only ask, on every request, whether a provider is set
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.include_router(health.router)
    app.include_router(auth.router)  # /fhir/.well-known/smart-configuration: not a resource, so not the lane's
    app.include_router(admin.router)
    app.include_router(messages.router)  # /fhir/$process-message: an operation, which the FHIR lane leaves to FastAPI
    app.router.routes.extend(fhir.ROUTES)  # served by the FHIR lane; here for what it passes on (see FhirLane)
    app.include_router(cases.router)
    app.include_router(consent.router)
    errors.install(app)
    app.add_middleware(fhir.FhirLane)  # the FHIR interactions, ahead of FastAPI's routing (see gateway.api.fhir)
    app.add_middleware(ObservabilityMiddleware, metrics=services.metrics)  # outermost: ids, metrics, the access log
    return app
