"""The service itself: the index of routes, liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from election_api import SERVICE_NAME, __version__
from election_api.schemas import ReadyStatus
from election_api.state import ApiState

# Litestar appends "; charset=utf-8" to text/* itself: a second charset parameter makes the header invalid.
_METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
_LINKS = {
    "health": "/health",
    "ready": "/ready",
    "predict": "/predict",
    "predict_batch": "/predict/batch",
    "model_info": "/model/info",
    "metrics": "/metrics",
    "openapi": "/schema/openapi.json",
    "docs": "/schema/swagger",
}


class ServiceController(Controller):
    @get("/", sync_to_thread=False, summary="Service name, version and links")
    def index(self, api: NamedDependency[ApiState]) -> dict[str, Any]:
        served = api.manager.current
        return {
            "name": SERVICE_NAME,
            "version": __version__,
            "data_mode": api.settings.data_mode.name,
            "model_version": served.version if served else None,
            "links": _LINKS,
        }

    @get("/health", sync_to_thread=False, summary="Liveness: the process answers")
    def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        sync_to_thread=False,
        summary="Readiness: 200 when a valid model is loaded, 503 otherwise; details include the last load error",
        responses={503: ResponseSpec(data_container=ReadyStatus, description="No valid model is loaded yet")},
    )
    def ready(self, api: NamedDependency[ApiState]) -> Response[ReadyStatus]:
        status = api.manager.status()
        return Response(status, status_code=200 if status.status == "ready" else 503)

    @get("/metrics", sync_to_thread=False, media_type="text/plain", summary="Prometheus metrics (text format)")
    def prometheus_metrics(self, api: NamedDependency[ApiState]) -> Response[str]:
        return Response(generate_latest(api.metrics.registry), media_type=_METRICS_MEDIA_TYPE)
