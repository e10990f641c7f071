"""The Litestar application: ``create_app(settings)`` builds one independent instance (own metrics registry,
own model manager, own poller), so tests can run several side by side."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import secrets
import signal
import time
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.params import Parameter
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from swagger_ui_bundle import swagger_ui_path

from election_api import SERVICE_NAME, __version__
from election_api.logs import AccessLog
from election_api.metrics import ApiMetrics
from election_api.schemas import (
    ApiError,
    BatchPrediction,
    ErrorBody,
    ExplanationOut,
    FieldError,
    ModelInfo,
    Prediction,
    Probabilities,
    ReadyStatus,
    RequestCodec,
    TopFeature,
)
from election_api.serving import ModelManager, Poller, ServedModel
from election_api.settings import ApiSettings
from election_assets.core.data_modes import DataMode
from election_assets.core.schema import LABELS

log = logging.getLogger("election_api.app")

# Batches at least this large are scored in a worker thread so the event loop keeps serving small requests.
THREAD_OFFLOAD_ROWS = 2_000
_METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
_ADMIN_SECURITY = "AdminToken"
# Swagger UI's files, served from the installed swagger-ui-bundle-v2 package: the docs page needs no CDN.
_DOCS_ASSETS = "/schema/assets"
_CANDIDATE_A, _CANDIDATE_B = LABELS


# -- OpenAPI: the request bodies are decoded by hand (msgspec, strict), so their schemas are declared here -------


def _row_schema(mode: DataMode) -> Schema:
    properties: dict[str, Any] = {}
    for spec in mode.input_fields:
        kind = OpenAPIType.INTEGER if spec.kind == "int" else OpenAPIType.NUMBER
        optional = spec.name in mode.optional_fields
        properties[spec.name] = Schema(
            type=[kind, OpenAPIType.NULL] if optional else kind,
            description=f"{spec.description} (optional: leave out or send null)" if optional else spec.description,
            minimum=None if spec.exclusive_minimum else spec.minimum,
            exclusive_minimum=spec.minimum if spec.exclusive_minimum else None,
            maximum=spec.maximum,
        )
    optional_note = f"; optional: {', '.join(sorted(mode.optional_fields))}" if mode.optional_fields else ""
    return Schema(
        title="PredictRequest",
        type=OpenAPIType.OBJECT,
        properties=properties,
        required=list(mode.required_field_names),
        additional_properties=False,
        description=(
            f"One {mode.unit}'s {len(mode.input_fields)} input fields ({mode.name} mode{optional_note}); "
            "unknown fields are rejected."
        ),
    )


def _operation_with_body(schema: Schema, description: str) -> type[Operation]:
    @dataclass
    class OperationWithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)}, required=True, description=description
            )

    return OperationWithBody


def _error_responses(*codes: int) -> dict[int, ResponseSpec]:
    reasons = {
        400: "Malformed JSON (including NaN/Infinity tokens) or an invalid query parameter",
        401: "Missing or wrong bearer token (ELECTION_API_ADMIN_TOKEN)",
        413: "Body larger than ELECTION_API_MAX_BODY_BYTES, or more rows than ELECTION_API_MAX_BATCH_ROWS",
        415: "Content-Type is not application/json",
        422: "A field is missing, unknown, of the wrong type or out of range; or the batch is empty",
        503: "No valid model is loaded yet",
    }
    return {code: ResponseSpec(data_container=ErrorBody, description=reasons[code]) for code in codes}


ExplainParam = Annotated[bool, Parameter(description="Add the top contributing features of each prediction")]


# -- errors --------------------------------------------------------------------------------------------------------


def _error_response(request: Request, status: int, detail: str, errors: list[FieldError], headers=None) -> Response:
    request_id = request.scope.get("state", {}).get("request_id")
    return Response(
        content=ErrorBody(status, detail, errors, request_id),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _api_error_handler(request: Request, error: ApiError) -> Response:
    return _error_response(request, error.status_code, error.detail, error.errors, error.headers)


def _error_for_status(request: Request, status: int, detail: str) -> FieldError:
    if status == 413:
        limit = request.app.api_settings.max_body_bytes  # type: ignore[attr-defined]
        return FieldError("$", f"request body is larger than {limit} bytes (ELECTION_API_MAX_BODY_BYTES)")
    if status == 404:
        return FieldError("path", f"no route {request.scope.get('path', '')!r}; the routes are listed at /")
    if status == 405:
        return FieldError("method", f"{request.method} is not allowed on {request.scope.get('path', '')!r}")
    return FieldError("$", detail)


def _http_exception_handler(request: Request, error: HTTPException) -> Response:
    errors: list[FieldError] = []
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        for item in error.extra:
            if isinstance(item, dict):
                errors.append(FieldError(str(item.get("key", "$")), str(item.get("message", error.detail))))
    status = error.status_code
    if not errors:  # every error body names what was wrong and why, not only the status
        errors.append(_error_for_status(request, status, str(error.detail)))
    if status >= 500:
        log.error(
            "server error",
            extra={"event": "server_error", "request_id": request.scope.get("state", {}).get("request_id")},
        )
    headers = dict(error.headers) if error.headers else None
    return _error_response(request, status, str(error.detail), errors, headers)


def _unexpected_error_handler(request: Request, error: Exception) -> Response:
    # A bug, not bad input (every bad input is an ApiError or HTTPException): logged with its traceback.
    log.exception(
        "unhandled error",
        exc_info=error,
        extra={"event": "unhandled_error", "request_id": request.scope.get("state", {}).get("request_id")},
    )
    return _error_response(request, 500, "internal server error; see the server log for this request id", [])


# -- the application -----------------------------------------------------------------------------------------------


class ElectionApi(Litestar):
    """Litestar plus one outer layer for every HTTP request (also 404/405/413): request id, access log, metrics.

    The route label is the matched route template (``scope["path_template"]``), never the raw path.
    """

    api_settings: ApiSettings
    api_metrics: ApiMetrics
    manager: ModelManager
    poller: Poller
    access_log: AccessLog
    # Generated request ids: 32 hex digits, a random prefix per process and a counter (no syscall per request).
    _request_id_prefix: str
    _request_counter: itertools.count

    @staticmethod
    def _get_default_plugins(plugins: list[Any]) -> list[Any]:
        # Every request and response model here is a msgspec struct. Litestar would also load its pydantic and
        # attrs plugins whenever those libraries are installed (they are, in the dev environment), which costs
        # about 0.3 s of imports at start-up and serves nothing.
        from litestar.plugins.core import MsgspecDIPlugin

        return [*plugins, MsgspecDIPlugin()]

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 128 and candidate.isprintable():
                    request_id = candidate
                break
        if request_id is None:
            request_id = f"{self._request_id_prefix}{next(self._request_counter):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "<unmatched>"
            self.api_metrics.observe_request(route, scope["method"], status, elapsed)
            if self.api_settings.access_log:
                self.access_log(request_id, scope["method"], scope["path"], route, status, elapsed)


def _render(served: ServedModel, features: np.ndarray, p_a: np.ndarray, explain: bool, top_n: int) -> list[Prediction]:
    version = served.version
    columns = served.mode.model_columns
    confidence = np.maximum(p_a, 1.0 - p_a)
    predictions = [
        Prediction(_CANDIDATE_A if a >= 0.5 else _CANDIDATE_B, c, Probabilities(a, 1.0 - a), version)
        for a, c in zip(p_a.tolist(), confidence.tolist(), strict=True)
    ]
    if explain:
        explanation = served.model.explain(features)
        contributions = explanation.contributions
        k = min(top_n, contributions.shape[1])
        order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
        bias = explanation.bias.tolist()
        for i, prediction in enumerate(predictions):
            prediction.explanation = ExplanationOut(
                explanation.space,
                bias[i],
                [TopFeature(columns[j], float(features[i, j]), float(contributions[i, j])) for j in order[i].tolist()],
            )
    return predictions


def _score(served: ServedModel, inputs: np.ndarray, explain: bool, top_n: int):
    features, p_a = served.predict(inputs)
    if not np.isfinite(p_a).all():  # cannot happen for in-range inputs; refuse rather than answer null
        bad = np.flatnonzero(~np.isfinite(p_a)).tolist()[:10]
        raise ApiError(422, "the model could not score these rows", [FieldError(f"$.rows{bad}", "non-finite output")])
    return p_a, _render(served, features, p_a, explain, top_n)


def create_app(settings: ApiSettings | None = None) -> ElectionApi:
    settings = settings or ApiSettings.from_env()
    metrics = ApiMetrics()
    manager = ModelManager(settings, metrics)
    poller = Poller(manager, settings.reload_interval_seconds)
    max_rows = settings.max_batch_rows
    default_top = settings.explain_top_n
    mode = settings.data_mode
    codec = RequestCodec(mode)
    row_schema = _row_schema(mode)
    # The bound depends on the mode's model columns; handlers resolve the name through signature_namespace.
    TopParam = Annotated[
        int | None,
        Parameter(
            ge=1,
            le=len(mode.model_columns),
            description="How many features ?explain=true lists (default ELECTION_API_EXPLAIN_TOP_N, 5)",
        ),
    ]

    def serving_model() -> ServedModel:
        served = manager.current  # captured once: the whole request uses this model
        if served is None:
            error = manager.last_error
            reason = error.error if error else "the model store has not been read yet"
            raise ApiError(
                503,
                "no valid model is loaded; the server keeps polling the model store",
                [FieldError("model", reason)],
                headers={"Retry-After": str(max(1, round(settings.reload_interval_seconds)))},
            )
        return served

    async def json_body(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise ApiError(
                415,
                "unsupported media type",
                [FieldError("content-type", f"expected application/json, got {content_type or 'no Content-Type'!r}")],
            )
        body = await request.body()
        if not body.strip():
            raise ApiError(400, "malformed JSON", [FieldError("$", "request body is empty")])
        return body

    @get("/", sync_to_thread=False, summary="Service name, version and links")
    def index() -> dict[str, Any]:
        served = manager.current
        return {
            "name": SERVICE_NAME,
            "version": __version__,
            "data_mode": mode.name,
            "model_version": served.version if served else None,
            "links": {
                "health": "/health",
                "ready": "/ready",
                "predict": "/predict",
                "predict_batch": "/predict/batch",
                "model_info": "/model/info",
                "metrics": "/metrics",
                "openapi": "/schema/openapi.json",
                "docs": "/schema/swagger",
                "redoc": "/schema/redoc",
            },
        }

    @get("/health", sync_to_thread=False, summary="Liveness: the process answers")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        sync_to_thread=False,
        summary="Readiness: 200 when a valid model is loaded, 503 otherwise; details include the last load error",
        responses={503: ResponseSpec(data_container=ReadyStatus, description="No valid model is loaded yet")},
    )
    def ready() -> Response[ReadyStatus]:  # the status dict, documented as ReadyStatus
        status = manager.status()
        return Response(status, status_code=200 if manager.current is not None else 503)

    @get("/model/info", sync_to_thread=False, summary="Manifest of the loaded model", responses=_error_responses(503))
    def model_info() -> Response[ModelInfo]:  # the body is ModelInfo, encoded and checked once at load time
        return Response(serving_model().info_json, media_type="application/json")

    @get("/metrics", sync_to_thread=False, media_type="text/plain", summary="Prometheus metrics (text format)")
    def prometheus_metrics() -> Response[str]:
        # Litestar appends "; charset=utf-8" to text/* itself: a second charset parameter makes the header invalid.
        return Response(generate_latest(metrics.registry), media_type=_METRICS_MEDIA_TYPE)

    @post(
        "/predict",
        status_code=200,
        summary=f"Predict the winner of one {mode.unit}",
        operation_class=_operation_with_body(row_schema, f"One {mode.unit}"),
        signature_namespace={"TopParam": TopParam},
        responses=_error_responses(400, 413, 415, 422, 503),
    )
    async def predict(request: Request, explain: ExplainParam = False, top: TopParam = None) -> Prediction:
        served = serving_model()
        inputs = codec.decode_single(await json_body(request))
        _, (prediction,) = _score(served, inputs, explain, top or default_top)
        metrics.confidence.observe(prediction.confidence)
        return prediction

    batch_schema = Schema(
        title="BatchRequest",
        type=OpenAPIType.OBJECT,
        properties={
            "rows": Schema(type=OpenAPIType.ARRAY, items=row_schema, min_items=1, max_items=max_rows),
        },
        required=["rows"],
        additional_properties=False,
    )

    @post(
        "/predict/batch",
        status_code=200,
        summary=f"Predict many {mode.unit} rows in one request",
        description=(
            f'Body {{"rows": [{mode.unit}, ...]}} with 1 to ELECTION_API_MAX_BATCH_ROWS rows; answer '
            '{"predictions": [...in request order...], "model_version": ..., "count": n}. '
            "Every row is scored by the same model."
        ),
        operation_class=_operation_with_body(batch_schema, "Rows to score"),
        signature_namespace={"TopParam": TopParam},
        responses=_error_responses(400, 413, 415, 422, 503),
    )
    async def predict_batch(request: Request, explain: ExplainParam = False, top: TopParam = None) -> BatchPrediction:
        served = serving_model()
        inputs = codec.decode_batch(await json_body(request), max_rows)
        top_n = top or default_top
        if len(inputs) >= THREAD_OFFLOAD_ROWS:
            p_a, predictions = await asyncio.to_thread(_score, served, inputs, explain, top_n)
        else:
            p_a, predictions = _score(served, inputs, explain, top_n)
        metrics.confidence.observe_many(np.maximum(p_a, 1.0 - p_a))
        return BatchPrediction(predictions, served.version, len(predictions))

    docs_assets = create_static_files_router(
        path=_DOCS_ASSETS, directories=[swagger_ui_path], include_in_schema=False, name="docs_assets"
    )
    handlers: list[Any] = [index, health, ready, model_info, prometheus_metrics, predict, predict_batch, docs_assets]

    if settings.admin_token:
        token = settings.admin_token.encode()

        @post(
            "/admin/reload",
            status_code=200,
            summary="Check the model store now (bearer token required)",
            security=[{_ADMIN_SECURITY: []}],
            responses=_error_responses(401),
        )
        async def admin_reload(request: Request) -> Response[ReadyStatus]:
            supplied = request.headers.get("authorization", "")
            scheme, _, credential = supplied.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token):
                raise ApiError(
                    401,
                    "a valid bearer token is required",
                    [FieldError("authorization", "missing or wrong token")],
                    headers={"WWW-Authenticate": "Bearer"},
                )
            swapped = await asyncio.to_thread(manager.poll_once)
            return Response({"swapped": swapped, **manager.status()})

        handlers.append(admin_reload)

    async def start_polling(app: ElectionApi) -> None:
        await asyncio.to_thread(manager.poll_once)  # the first load; failures leave the app up and not ready
        app.state["poller_task"] = asyncio.create_task(poller.run(), name="election-model-poller")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            # Only possible in the main thread (uvicorn); test clients run the app elsewhere.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, poller.wake)
            app.state["sighup"] = True
        log.info(
            "api started",
            extra={
                "event": "startup",
                "model_store": str(settings.model_store_dir),
                "model_version": manager.current.version if manager.current else None,
                "sighup_reload": bool(app.state.get("sighup")),
            },
        )

    async def stop_polling(app: ElectionApi) -> None:
        task = app.state.get("poller_task")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if app.state.get("sighup"):
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    app = ElectionApi(
        route_handlers=handlers,
        on_startup=[start_polling],
        on_shutdown=[stop_polling],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={
            ApiError: _api_error_handler,
            HTTPException: _http_exception_handler,
            Exception: _unexpected_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Election forecasting API",
            version=__version__,
            description=(
                f"Predicts the winner of a {mode.unit} ({mode.name} mode, ELECTION_API_MODE) with the champion model "
                "of the election forecasting pipeline. "
                "Errors share one shape: {status_code, detail, errors: [{field, reason}], request_id}."
            ),
            path="/schema",
            components=Components(
                security_schemes={
                    _ADMIN_SECURITY: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="POST /admin/reload only; the token is ELECTION_API_ADMIN_TOKEN",
                    )
                }
            ),
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/swagger",
                    js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{_DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                    favicon="",
                ),
                # ReDoc has no packaged build: its page loads the script from cdn.redoc.ly (no web fonts, though).
                RedocRenderPlugin(path="/redoc", google_fonts=False, favicon=""),
            ],
        ),
        debug=False,
    )
    app.api_settings = settings
    app.api_metrics = metrics
    app.access_log = AccessLog()
    app._request_id_prefix = secrets.token_hex(8)
    app._request_counter = itertools.count()
    app.manager = manager
    app.poller = poller
    return app


def encode_json(value: Any) -> bytes:
    return msgspec.json.encode(value)
