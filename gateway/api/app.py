"""Build the FastAPI application around already-built services (see gateway.bootstrap)."""

from fastapi import FastAPI

from gateway.api import cases, consent, errors, fhir, health
from gateway.api.observability import ObservabilityMiddleware


def create_app(services) -> FastAPI:
    app = FastAPI(
        title="Family-violence interoperability gateway",
        version=services.version,
        description="FHIR R4B exchange between agencies working one family-violence case.",
    )
    app.state.services = services
    app.include_router(health.router)
    app.router.routes.extend(fhir.routes)
    app.include_router(cases.router)
    app.include_router(consent.router)
    errors.install(app)
    app.add_middleware(ObservabilityMiddleware, metrics=services.metrics)
    return app
