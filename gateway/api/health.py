"""Liveness, readiness and Prometheus metrics for the operator."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Ready when the database answers")
async def healthz(request: Request) -> Response:
    services = request.app.state.services
    try:
        await services.db.read(lambda conn: conn.exec_driver_sql("SELECT 1"))
    except Exception:  # any failure means not ready; the reason is in the server log
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": services.db.url.get_backend_name()})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.services.metrics.exposition()
    return Response(body, media_type=content_type)
