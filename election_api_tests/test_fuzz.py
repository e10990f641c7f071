"""Property-based tests with schemathesis against the API's own OpenAPI schema: every route, valid and invalid
requests generated from the schema; no 5xx, and every response (status, content type, headers, body) conforms
to what the schema documents.

Three real apps are fuzzed: one serving a champion (with the admin route enabled), one whose model store is
empty, so the documented 503 answers are checked too, and one in real mode (its prediction routes). The suite
runs a bounded number of examples per route and mode (``ELECTION_FUZZ_MAX_EXAMPLES``, default 25);
``scripts/fuzz_api.py`` runs the same tests longer, in-process or against a real uvicorn port
(``ELECTION_FUZZ_LIVE=1``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from election_api.app import create_app
from election_api.settings import ApiSettings
from election_api_tests.conftest import LiveServer, RealModel, TrainedModels, publish, publish_real
from election_assets.core.data_modes import REAL_MODE, SYNTHETIC_MODE, DataMode

MAX_EXAMPLES = int(os.environ.get("ELECTION_FUZZ_MAX_EXAMPLES", "25"))
LIVE = os.environ.get("ELECTION_FUZZ_LIVE", "") == "1"
ADMIN_TOKEN = "fuzz-admin-token"  # noqa: S105 - a test value, not a secret
# Routes that need a model answer 503 (documented, with Retry-After) while the store is empty.
NEEDS_A_MODEL = {"/predict", "/predict/batch", "/model/info", "/ready"}


# schemathesis' default statuses for refused invalid input, plus 413: a batch over ELECTION_API_MAX_BATCH_ROWS (or
# a body over ELECTION_API_MAX_BODY_BYTES) is refused with 413, as the schema documents.
_REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
_CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": _REJECTED}}})


def _schema(settings_: ApiSettings) -> Iterator[schemathesis.BaseSchema]:
    if LIVE:
        with LiveServer(settings_) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json", config=_CONFIG)
    else:
        yield schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(settings_), config=_CONFIG)


def _settings(root: Path, store: Path, data_mode: DataMode = SYNTHETIC_MODE) -> ApiSettings:
    return ApiSettings(
        model_store_dir=store,
        data_mode=data_mode,
        reports_dir=root / "reports",
        reload_interval_seconds=3600.0,
        access_log=False,
        max_batch_rows=50,  # small limits, so generated bodies reach them
        max_body_bytes=64 * 1024,
        admin_token=ADMIN_TOKEN,
    )


@pytest.fixture(scope="module")
def serving_schema(tmp_path_factory, trained: TrainedModels) -> Iterator[schemathesis.BaseSchema]:
    root = tmp_path_factory.mktemp("fuzz-serving")
    store = root / "model_store"
    publish(store, trained.trees, trained, name="xgboost")  # a tree ensemble: explanations via tree paths
    yield from _schema(_settings(root, store))


@pytest.fixture(scope="module")
def real_serving_schema(tmp_path_factory, real_model: RealModel) -> Iterator[schemathesis.BaseSchema]:
    root = tmp_path_factory.mktemp("fuzz-real")
    store = root / "real_model_store"
    publish_real(store, real_model)
    yield from _schema(_settings(root, store, REAL_MODE))


@pytest.fixture(scope="module")
def empty_store_schema(tmp_path_factory) -> Iterator[schemathesis.BaseSchema]:
    root = tmp_path_factory.mktemp("fuzz-empty")
    yield from _schema(_settings(root, root / "model_store"))


_FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every (method, path) of the schema, in both modes where there is an input to make invalid.

    Read from an app built with the same settings as the fixtures (building an app starts nothing).
    """
    app = create_app(_settings(Path("/nonexistent"), Path("/nonexistent/model_store")))
    cases = []
    for path, item in app.openapi_schema.to_schema()["paths"].items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("requestBody") or operation.get("parameters"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


OPERATIONS = _operations()
_IDS = [f"{method} {path} {mode.value}" for method, path, mode in OPERATIONS]
# Real mode differs from synthetic mode in the request bodies only.
PREDICT_OPERATIONS = [case for case in OPERATIONS if case[1].startswith("/predict")]
_PREDICT_IDS = [f"{method} {path} {mode.value}" for method, path, mode in PREDICT_OPERATIONS]


def _fuzz(schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode, check) -> None:
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @_FUZZ_SETTINGS
    def run(case) -> None:
        check(case)

    run()


def test_every_route_of_the_schema_is_fuzzed(serving_schema):
    fuzzed = {(method, path) for method, path, _ in OPERATIONS}
    served = {(method.upper(), path) for path, item in serving_schema.raw_schema["paths"].items() for method in item}
    assert fuzzed == served
    for route in ("/", "/health", "/ready", "/predict", "/predict/batch", "/metrics", "/model/info", "/admin/reload"):
        assert any(path == route for _, path in fuzzed), route


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS, ids=_IDS)
def test_serving_api_conforms_to_its_schema(serving_schema, method, path, mode):
    def check(case) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if path == "/admin/reload" else None
        response = case.call_and_validate(headers=headers)
        assert response.status_code < 500, response.text

    _fuzz(serving_schema, method, path, mode, check)


@pytest.mark.parametrize(("method", "path", "mode"), PREDICT_OPERATIONS, ids=_PREDICT_IDS)
def test_real_mode_predictions_conform_to_their_schema(real_serving_schema, method, path, mode):
    def check(case) -> None:
        response = case.call_and_validate()
        assert response.status_code < 500, response.text

    _fuzz(real_serving_schema, method, path, mode, check)


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS, ids=_IDS)
def test_api_without_a_model_conforms_to_its_schema(empty_store_schema, method, path, mode):
    def check(case) -> None:
        # The one 5xx allowed is the documented 503 "no valid model is loaded yet" of the routes needing a model.
        response = case.call_and_validate(excluded_checks=[not_a_server_error])
        if response.status_code >= 500:
            assert response.status_code == 503 and path in NEEDS_A_MODEL, (path, response.text)

    _fuzz(empty_store_schema, method, path, mode, check)
