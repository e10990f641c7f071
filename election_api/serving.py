"""The served model and its hot swap.

``ModelManager.current`` is one reference to an immutable ``ServedModel``. A request reads it once at its start
and uses that object to the end, so a swap never mixes two models inside a request and in-flight requests finish
on the model they started with. A new version is loaded and verified completely (checksums, feature list, model
arrays, the reference predictions its manifest recorded) before the reference is replaced; when that fails, the
current model keeps serving and the error is kept for ``/ready`` and counted in
``election_model_reload_failures_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from election_api.errors import ApiError, FieldError
from election_api.metrics import ApiMetrics
from election_api.schemas import LoadFailure, ModelInfo, ReadyStatus
from election_api.settings import ApiSettings
from election_assets.core.compiled_model import CompiledModel
from election_assets.core.data_modes import DataMode, data_mode_of
from election_assets.core.manifest import ModelManifest
from election_assets.core.model_store import ModelStore, ModelStoreError

log = logging.getLogger("election_api.model")


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, eq=False)
class ServedModel:
    version: str
    manifest: ModelManifest
    model: CompiledModel
    mode: DataMode
    loaded_at: str
    accuracy: float
    info_json: bytes  # the /model/info body, encoded once at load time

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(model columns, P(Candidate_A)) for an input matrix of the mode's fields."""
        features = self.mode.features(inputs)
        return features, self.model.predict_proba_a(features)


def build_served_model(store: ModelStore, version: str, mode: DataMode) -> ServedModel:
    # ``store.load`` verifies the checksums, the feature list, the model arrays and that the model reproduces the
    # reference predictions its manifest recorded on held-out rows: a model that cannot score, or scores garbage,
    # fails there. What is left to check here is what the API serves: the mode, the accuracy and probabilities.
    stored = store.load(version)
    trained_on = data_mode_of(stored.manifest)
    if trained_on is not mode:
        raise ModelStoreError(
            f"version {version!r} is a {trained_on.name}-mode model and this API serves {mode.name} mode: "
            f"set ELECTION_API_MODE={trained_on.name}, or point the API at a {mode.name}-mode model store"
        )
    accuracy = stored.manifest.metrics.get("accuracy")
    if accuracy is None:
        raise ModelStoreError(f"version {version!r}: manifest metrics.accuracy is missing")
    # The model reproduces these within the reference tolerance, so they stand for its outputs: a manifest written
    # with a model whose outputs are not probabilities is refused without scoring anything more.
    reference = np.asarray(stored.manifest.reference.p_candidate_a, dtype=np.float64)
    if not np.all((reference >= 0.0) & (reference <= 1.0)):
        bad = reference[~((reference >= 0.0) & (reference <= 1.0))][0]
        raise ModelStoreError(f"version {version!r}: model returns {bad!r} for a reference row, not a probability")
    loaded_at = _now()
    info = msgspec.json.encode(ModelInfo.of(stored.manifest, loaded_at))  # the /model/info body, encoded once
    return ServedModel(stored.version, stored.manifest, stored.model, mode, loaded_at, accuracy, info)


class ModelManager:
    def __init__(self, settings: ApiSettings, metrics: ApiMetrics):
        self.settings = settings
        self.metrics = metrics
        self.store = ModelStore(settings.model_store_dir)
        self.current: ServedModel | None = None
        self.last_error: LoadFailure | None = None
        self.last_check_at: str | None = None
        self.drift: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._last_failure_key: tuple[str | None, str] | None = None

    # -- model -----------------------------------------------------------------------------------------------

    def serving(self) -> ServedModel:
        """The model a request uses from start to end (read once), or a 503 naming why none is loaded."""
        served = self.current
        if served is None:
            error = self.last_error
            raise ApiError(
                503,
                "no valid model is loaded; the server keeps polling the model store",
                [FieldError("model", error.error if error else "the model store has not been read yet")],
                headers={"Retry-After": str(max(1, round(self.settings.reload_interval_seconds)))},
            )
        return served

    def check(self) -> bool:
        """Follow ``LATEST``: load and swap to a new version if there is one. Returns True when it swapped.

        Blocking (file reads, checksums): the app runs it in a worker thread.
        """
        with self._lock:
            self.last_check_at = _now()
            version: str | None = None
            try:
                version = self.store.latest_version()
                if version is None:
                    raise ModelStoreError(
                        f"no model published yet: {self.store.pointer_path} does not exist (run the pipeline)"
                    )
                current = self.current
                if current is not None and current.version == version:
                    self._clear_error()
                    return False
                served = build_served_model(self.store, version, self.settings.data_mode)
            except Exception as error:  # noqa: BLE001 - any failure keeps the current model serving
                self._record_failure(version, error)
                return False
            previous = self.current
            self.current = served  # the atomic swap: one reference assignment
            self._clear_error()
            self.metrics.accuracy.set(served.accuracy)
            self.metrics.model_loaded.set(1)
            self.metrics.reloads.inc()
            log.info(
                "model loaded",
                extra={
                    "event": "model_loaded",
                    "model_version": served.version,
                    "previous_version": previous.version if previous else None,
                    "model_name": served.manifest.model_name,
                    "accuracy": served.accuracy,
                },
            )
            return True

    def _clear_error(self) -> None:
        self.last_error = None
        self._last_failure_key = None

    def _record_failure(self, version: str | None, error: Exception) -> None:
        message = str(error) if isinstance(error, ModelStoreError) else f"{type(error).__name__}: {error}"
        self.last_error = LoadFailure(version, message, _now())
        key = (version, message)
        if key != self._last_failure_key:  # count and log each distinct failure once, not on every poll
            self._last_failure_key = key
            self.metrics.reload_failures.inc()
            log.error(
                "model load failed; %s",
                "keeping the current model" if self.current else "no model is served",
                extra={
                    "event": "model_load_failed",
                    "attempted_version": version,
                    "serving_version": self.current.version if self.current else None,
                    "error": message,
                },
            )

    # -- drift -----------------------------------------------------------------------------------------------

    def refresh_drift(self) -> None:
        path = self.settings.drift_report_path
        if path is None:  # real mode: no drift report, its walk-forward backtest is what watches the model
            self._no_drift_report()
            return
        try:
            report = json.loads(path.read_text())
            detected = report["dataset_drift"]
            if not isinstance(detected, bool):
                raise ValueError("dataset_drift is not a boolean")
        except FileNotFoundError:
            self._no_drift_report()
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            if self.drift is None or self.drift.get("error") != str(error):
                log.warning("drift report unreadable", extra={"event": "drift_report_unreadable", "error": str(error)})
            self.drift = {"error": str(error), "path": str(path)}
            self.metrics.drift_report_available.set(0)
            return
        self.drift = {
            "dataset_drift": detected,
            "drift_share": report.get("drift_share"),
            "drifted_columns": report.get("drifted_columns"),
            "generated_at": report.get("generated_at"),
        }
        self.metrics.drift.set(1 if detected else 0)
        self.metrics.drift_report_available.set(1)

    def _no_drift_report(self) -> None:
        self.drift = None
        self.metrics.drift.set(0)
        self.metrics.drift_report_available.set(0)

    def poll_once(self) -> bool:
        swapped = self.check()
        self.refresh_drift()
        return swapped

    def status(self) -> ReadyStatus:
        current = self.current
        return ReadyStatus(
            status="ready" if current is not None else "not_ready",
            data_mode=self.settings.data_mode.name,
            model_version=current.version if current else None,
            loaded_at=current.loaded_at if current else None,
            last_check_at=self.last_check_at,
            last_error=self.last_error,
            model_store=str(self.store.root),
            drift=self.drift,
        )


class Poller:
    """Runs ``poll_once`` every interval in a worker thread of the event loop; ``wake()`` (SIGHUP) checks now."""

    def __init__(self, manager: ModelManager, interval: float):
        self.manager = manager
        self.interval = interval
        self._wake: asyncio.Event | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """The app's lifespan: the first load (a failure leaves the app up and not ready), then the polling task."""
        manager = self.manager
        await asyncio.to_thread(manager.poll_once)
        task = asyncio.create_task(self.run(), name="election-model-poller")
        loop = asyncio.get_running_loop()
        sighup = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            # Only possible in the main thread (uvicorn); test clients run the app elsewhere.
            loop.add_signal_handler(signal.SIGHUP, self.wake)
            sighup = True
        log.info(
            "api started",
            extra={
                "event": "startup",
                "model_store": str(manager.store.root),
                "model_version": manager.current.version if manager.current else None,
                "sighup_reload": sighup,
            },
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if sighup:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signal.SIGHUP)

    async def run(self) -> None:
        """Loop forever: wait an interval (or a wake-up), then poll. ``lifespan`` polls once itself first."""
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.manager.poll_once)
            except Exception:  # pragma: no cover - poll_once already catches model errors
                log.exception("model poll failed", extra={"event": "poll_failed"})
            log.debug("model poll", extra={"event": "poll", "seconds": round(time.monotonic() - started, 4)})

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()
