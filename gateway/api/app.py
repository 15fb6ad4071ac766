"""Build the FastAPI application around already-built services (see gateway.bootstrap)."""

from fastapi import FastAPI

from gateway.api import admin, auth, cases, consent, errors, fhir, health, messages
from gateway.api.observability import ObservabilityMiddleware


def create_app(services) -> FastAPI:
    app = FastAPI(
        title="Family-violence interoperability gateway",
        version=services.version,
        description="FHIR R4B exchange between agencies working one family-violence case.",
    )
    app.state.services = services
    app.include_router(health.router)
    app.include_router(auth.router)  # before the FHIR routes: /fhir/.well-known/smart-configuration is not a resource
    app.include_router(admin.router)
    app.include_router(messages.router)  # before the FHIR routes: $process-message is an operation, not a type
    app.router.routes.extend(fhir.routes)
    app.include_router(cases.router)
    app.include_router(consent.router)
    errors.install(app)
    app.add_middleware(ObservabilityMiddleware, metrics=services.metrics)
    return app
