"""Helpers for the API tests: tiny champions trained in seconds, published into temporary model stores."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from election_api.app import create_app
from election_api.openapi import REQUEST_EXAMPLES
from election_api.settings import ApiSettings
from election_assets.core.compiled_model import CompiledModel, save_compiled_model
from election_assets.core.data_modes import REAL_MODE, SYNTHETIC_MODE, DataMode
from election_assets.core.features import engineer_features
from election_assets.core.manifest import REAL, SYNTHETIC, ModelManifest, NoiseParts, Promotion, SourceRun
from election_assets.core.model_store import (
    HOLDOUT_FILE,
    MODEL_FILE,
    REFERENCE_ROWS,
    ModelStore,
    reference_predictions,
)
from election_assets.core.paths import drift_summary_path
from election_assets.core.real_features import (
    REAL_FEATURE_NAMES,
    REAL_INPUT_FIELD_NAMES,
    REAL_INPUT_FIELDS,
    real_model_features,
)
from election_assets.core.schema import INPUT_FIELD_NAMES, INPUT_FIELDS, LABELS

# The docs page's example region (a close race Candidate A leads in the polls), as the tests' valid row.
VALID_ROW: dict[str, float] = dict(REQUEST_EXAMPLES["synthetic"])
assert tuple(VALID_ROW) == INPUT_FIELD_NAMES
TRAINED_AT = "2026-01-01T00:00:00+00:00"


def rows_from_inputs(inputs: np.ndarray) -> list[dict[str, float]]:
    return [
        {
            name: (int(value) if spec.kind == "int" else float(value))
            for name, spec, value in zip(INPUT_FIELD_NAMES, INPUT_FIELDS, row, strict=True)
        }
        for row in inputs
    ]


class TrainedModels:
    """Two different compiled champions (logistic regression and XGBoost) and rows to score."""

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from xgboost import XGBClassifier

        from election_assets.core.synthetic import generate_regions
        from election_assets.modelling.export import compile_estimator

        train = generate_regions(3_000, seed=101)
        test = generate_regions(400, seed=102)
        x = engineer_features(train[list(INPUT_FIELD_NAMES)].to_numpy(np.float64))
        y = (train["winner"] == LABELS[0]).to_numpy(int)
        self.test_inputs = test[list(INPUT_FIELD_NAMES)].to_numpy(np.float64)
        self.test_labels = (test["winner"] == LABELS[0]).to_numpy(int)
        self.test_frame = test
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
        booster = XGBClassifier(n_estimators=30, max_depth=3, learning_rate=0.2, n_jobs=1).fit(x, y)
        self.linear: CompiledModel = compile_estimator(logistic)
        self.trees: CompiledModel = compile_estimator(booster)

    def accuracy(self, model: CompiledModel) -> float:
        p = model.predict_proba_a(engineer_features(self.test_inputs))
        return float(np.mean((p >= 0.5) == self.test_labels))


@pytest.fixture(scope="session")
def trained() -> TrainedModels:
    return TrainedModels()


def make_manifest(model: CompiledModel, mode: DataMode, inputs: np.ndarray, **fields: Any) -> ModelManifest:
    """A manifest of ``model`` for ``mode`` with test provenance; ``fields`` are the rest (data_mode, metrics...)."""
    return ModelManifest(
        model_kind=model.kind,
        trained_at=TRAINED_AT,
        feature_names=list(mode.model_columns),
        input_schema=mode.input_schema(),
        labels={"positive": LABELS[0], "negative": LABELS[1]},
        hyperparameters={},
        training_data_fingerprint="test",
        source_run=SourceRun(dagster_run_id="test"),
        library_versions={},
        reference=reference_predictions(model, mode, inputs[:REFERENCE_ROWS]),
        **fields,
    )


def publish(
    store_dir: Path,
    model: CompiledModel,
    trained: TrainedModels,
    *,
    accuracy: float | None = None,
    roc_auc: float = 0.9,
    name: str = "test_model",
    make_latest: bool = True,
) -> str:
    """Publish ``model`` as a champion the way the pipeline does (manifest + model.npz + holdout.csv)."""
    accuracy = trained.accuracy(model) if accuracy is None else accuracy
    manifest = make_manifest(
        model,
        SYNTHETIC_MODE,
        trained.test_inputs,
        data_mode=SYNTHETIC,
        model_name=name,
        metrics={"accuracy": accuracy, "roc_auc": roc_auc, "brier": 0.1, "log_loss": 0.3},
        training_rows=3000,
        holdout_rows=len(trained.test_frame),
        cv_metrics={"accuracy": accuracy},
        promotion=Promotion(metric="log_loss", reason="test"),
    )

    def write_artifacts(directory: Path) -> None:
        save_compiled_model(model, directory / MODEL_FILE)
        trained.test_frame[["region_id", *INPUT_FIELD_NAMES, "winner"]].to_csv(directory / HOLDOUT_FILE, index=False)

    return ModelStore(store_dir).publish(manifest, write_artifacts, make_latest=make_latest)


class RealModel:
    """A small real-mode (county) model, compiled the way ``real_champion_model`` compiles the forecaster, and
    county rows to score, half of them in states without polls."""

    def __init__(self) -> None:
        from xgboost import XGBRegressor

        from election_assets.modelling.export import compile_swing_model

        rng = np.random.default_rng(7)
        n = 2_000

        def share(low: float = 0.2, high: float = 0.8) -> np.ndarray:
            return rng.uniform(low, high, n)

        columns = {
            "prev_dem_share": share(),
            "prev2_dem_share": share(),
            "state_prev_dem_share": share(0.35, 0.65),
            "state_prev2_dem_share": share(0.35, 0.65),
            "prev_total_votes": rng.integers(1_000, 500_000, n).astype(float),
            "prev2_total_votes": rng.integers(1_000, 500_000, n).astype(float),
            "bachelor_rate": share(0.05, 0.6),
            "less_hs_rate": share(0.05, 0.3),
            "rural_urban_code": rng.integers(1, 10, n).astype(float),
            "unemployment_rate": rng.uniform(2.0, 12.0, n),
            "prev_unemployment_rate": rng.uniform(2.0, 12.0, n),
            "poll_dem_share": np.where(rng.random(n) < 0.5, share(0.4, 0.6), np.nan),
        }
        self.inputs = np.column_stack([columns[name] for name in REAL_INPUT_FIELD_NAMES])
        model_columns = real_model_features(self.inputs)
        features = model_columns[:, : len(REAL_FEATURE_NAMES)]
        relative_swing = (
            0.1 * (features[:, REAL_FEATURE_NAMES.index("bachelor_rate")] - 0.3)
            - 0.3 * features[:, REAL_FEATURE_NAMES.index("prev_swing_vs_state")]
        )
        regressor = XGBRegressor(n_estimators=20, max_depth=3, learning_rate=0.3, n_jobs=1).fit(
            features, relative_swing
        )
        self.model = compile_swing_model(regressor, sigma_polled=0.03, sigma_unpolled=0.06)

    def rows(self, count: int | None = None) -> list[dict[str, float | None]]:
        """JSON rows: an unpolled state's ``poll_dem_share`` is left out."""
        return [
            {
                name: (int(value) if spec.kind == "int" else float(value))
                for name, spec, value in zip(REAL_INPUT_FIELD_NAMES, REAL_INPUT_FIELDS, row, strict=True)
                if not np.isnan(value)
            }
            for row in self.inputs[:count]
        ]

    def probability(self, inputs: np.ndarray) -> np.ndarray:
        return self.model.predict_proba_a(real_model_features(inputs))


@pytest.fixture(scope="session")
def real_model() -> RealModel:
    return RealModel()


def publish_real(store_dir: Path, real: RealModel, *, trained_through: int = 2020) -> str:
    """Publish the real-mode model with the manifest fields ``real_champion_model`` writes."""
    model = real.model
    manifest = make_manifest(
        model,
        REAL_MODE,
        real.inputs,
        data_mode=REAL,
        model_name="swing_forecaster",
        metrics={"accuracy": 0.97, "brier": 0.02, "log_loss": 0.06},
        training_rows=2000,
        trained_through=trained_through,
        training_years=list(range(2008, trained_through + 1, 4)),
        forecast_year=trained_through + 4,
        metrics_source=f"walk-forward backtest {trained_through} (trained on the elections before it)",
        noise={
            "polled": NoiseParts(national=0.02, state=0.02, county=0.01, source="test"),
            "unpolled": NoiseParts(national=0.02, state=0.05, county=0.01, source="test"),
        },
    )
    return ModelStore(store_dir).publish(manifest, lambda directory: save_compiled_model(model, directory / MODEL_FILE))


def write_drift(reports_dir: Path, drift: bool) -> None:
    path = drift_summary_path(reports_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset_drift": drift,
        "drift_share": 0.5 if drift else 0.0,
        "drifted_columns": ["urban_ratio"] if drift else [],
        "generated_at": "2026-01-01T00:00:00+00:00",
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report))
    temporary.replace(path)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model_store"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, store_dir: Path) -> ApiSettings:
    # A long poll interval: tests trigger checks explicitly (manager.poll_once) to stay deterministic.
    return ApiSettings(
        model_store_dir=store_dir, reports_dir=tmp_path / "reports", reload_interval_seconds=3600.0, access_log=False
    )


@pytest.fixture
def champion(store_dir: Path, trained: TrainedModels) -> str:
    return publish(store_dir, trained.linear, trained, name="logistic_regression")


@pytest.fixture
def client(settings: ApiSettings, champion: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def make_client(settings: ApiSettings, **overrides) -> TestClient:
    return TestClient(create_app(replace(settings, **overrides)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The real app under uvicorn in a background thread, for tests that need real concurrent HTTP."""

    def __init__(self, settings: ApiSettings):
        import uvicorn

        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample in Prometheus text, or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels is None or all(sample.labels.get(k) == v for k, v in labels.items())):
                return sample.value
    return None


# --- Election night (the /live routes): a real NATS JetStream key-value bucket per test -------------------------


def nats_answers(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=1):
            return True
    except OSError:
        return False


class LiveBucket:
    """A JetStream key-value bucket of one test's own (a unique name; deleted by ``close``), written from the test's
    thread through an event loop of its own, as the live updater would write it."""

    def __init__(self, nats_url: str) -> None:
        import asyncio
        import uuid

        self.nats_url = nats_url
        self.name = f"test_live_{uuid.uuid4().hex[:12]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-bucket", daemon=True)
        self._thread.start()
        self._client: Any = None
        self._kv: Any = None

    def _run(self, coroutine: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=15)

    def create(self) -> LiveBucket:
        async def create() -> None:
            import nats

            self._client = await nats.connect(self.nats_url, connect_timeout=2)
            self._kv = await self._client.jetstream().create_key_value(bucket=self.name, history=1)

        self._run(create())
        return self

    def settings(self, **overrides: Any) -> Any:
        from election_assets.core.live import LiveSettings

        return replace(LiveSettings(nats_url=self.nats_url, live_bucket=self.name), **overrides)

    def put(self, key: str, value: bytes) -> int:
        """Write one raw value; its revision."""
        return self._run(self._kv.put(key, value))

    def put_record(self, record: Any) -> int:
        """Write a ``StateLive`` under its state's key, a ``NationalLive`` under ``national``; its revision."""
        from election_assets.core.live import NATIONAL_KEY, StateLive, state_key

        key = state_key(record.state_po) if isinstance(record, StateLive) else NATIONAL_KEY
        return self.put(key, record.to_json())

    def delete(self, key: str) -> None:
        self._run(self._kv.delete(key))

    def close(self) -> None:
        async def close() -> None:
            if self._client is not None:
                if self._kv is not None:
                    await self._client.jetstream().delete_key_value(self.name)
                await self._client.close()

        try:
            self._run(close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


@pytest.fixture
def live_bucket() -> Iterator[LiveBucket]:
    """A new empty bucket on the machine's NATS (ELECTION_NATS_URL, default nats://127.0.0.1:4222)."""
    from election_assets.core.live import LiveSettings

    url = LiveSettings.from_env().nats_url
    if not nats_answers(url):
        pytest.skip(f"no NATS server answers at {url} (nats-server -js)")
    bucket = LiveBucket(url).create()
    try:
        yield bucket
    finally:
        bucket.close()


class LiveNight:
    """Writes a made-up election night's records to a bucket, the one place the live tests make records change
    (swap in a real replay through the updater here): each state with a probability, some of them called, and the
    national record that follows from them (electoral votes of 2020; unreported states count as even races)."""

    def __init__(self, bucket: LiveBucket, year: int = 2020) -> None:
        from election_assets.real.evaluation import electoral_votes

        self.bucket = bucket
        self.year = year
        self.electoral_votes = electoral_votes(year)
        self.p_dem: dict[str, float] = {}
        self.called: dict[str, str] = {}
        self.messages = 0

    def report(self, p_dem: dict[str, float], called: Iterable[str] = (), counted: float = 0.5) -> None:
        """Write the states of ``p_dem`` (``called`` ones with a call for their leader), then the national record."""
        from election_assets.core.live import StateCall, StateLive

        stamp = "2020-11-04T03:00:00+00:00"
        for state_po, p in p_dem.items():
            self.messages += 10
            self.p_dem[state_po] = p
            if state_po in called:
                self.called[state_po] = "D" if p >= 0.5 else "R"
            call = None
            if state_po in self.called:
                call = StateCall(self.called[state_po], max(p, 1 - p), counted, 1_000_000, self.messages, stamp)
            expected = 1_000_000 * self.electoral_votes[state_po] / 3
            share = 0.5 + (p - 0.5) * 0.2
            record = StateLive(
                year=self.year,
                state_po=state_po,
                electoral_votes=self.electoral_votes[state_po],
                p_dem=p,
                expected_dem_share=share,
                dem_share_sd=0.02,
                counted_dem_share=share - 0.01,
                counted_votes=int(counted * expected),
                expected_votes=expected,
                counties_reported=int(counted * 60),
                counties_complete=int(counted * 30),
                counties=60,
                call=None if call is None else asdict(call),
                updated_at=stamp,
            )
            self.bucket.put_record(record)
        self.bucket.put_record(self.national())

    def national(self) -> Any:
        import math

        from election_assets.core.live import NationalLive

        p = {state_po: self.p_dem.get(state_po, 0.5) for state_po in self.electoral_votes}
        mean = sum(self.electoral_votes[s] * p[s] for s in p)
        sd = math.sqrt(sum(self.electoral_votes[s] ** 2 * p[s] * (1 - p[s]) for s in p)) or 1e-9
        median = round(mean)
        counted = sum(1_000_000 * self.electoral_votes[s] / 3 for s in self.p_dem) / 2
        expected = 1_000_000 * 538 / 3
        return NationalLive(
            year=self.year,
            p_dem=0.5 * (1 + math.erf((mean - 269.5) / (sd * math.sqrt(2)))),
            dem_electoral_votes_median=median,
            dem_electoral_votes_low=max(0, round(mean - 1.2816 * sd)),
            dem_electoral_votes_high=min(538, round(mean + 1.2816 * sd)),
            dem_electoral_votes_called=sum(self.electoral_votes[s] for s, w in self.called.items() if w == "D"),
            rep_electoral_votes_called=sum(self.electoral_votes[s] for s, w in self.called.items() if w == "R"),
            states_called=len(self.called),
            national_swing_mean=0.0,
            national_swing_sd=0.02,
            counted_votes=int(counted),
            expected_votes=expected,
            messages_applied=self.messages,
            duplicates=0,
            dead_lettered=0,
            last_sequence=self.messages,
            updated_at="2020-11-04T03:00:00+00:00",
        )


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)
