"""Prometheus metrics, environment settings, and the import boundary of the API."""

from __future__ import annotations

import subprocess
import sys

import pytest

from election_api.settings import ApiSettings, SettingsError
from election_api_tests.conftest import VALID_ROW, make_client, metric_value, write_drift

METRIC_NAMES = (
    "election_api_requests_total",
    "election_api_request_latency_seconds",
    "election_prediction_confidence",
    "election_drift_detected",
    "election_model_accuracy",
)


def test_metrics_after_a_few_requests(client, trained, store_dir, champion):
    from election_assets.core.model_store import ModelStore

    for _ in range(7):
        assert client.post("/predict", json=VALID_ROW).status_code == 200
    assert client.post("/predict/batch", json={"rows": [VALID_ROW] * 5}).status_code == 200
    assert client.post("/predict", json={}).status_code == 422
    client.get("/nope/42")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name

    requests = "election_api_requests_total"
    assert metric_value(text, requests, {"route": "/predict", "method": "POST", "status": "200"}) == 7.0
    assert metric_value(text, requests, {"route": "/predict", "method": "POST", "status": "422"}) == 1.0
    assert metric_value(text, requests, {"route": "/predict/batch", "method": "POST", "status": "200"}) == 1.0
    assert metric_value(text, requests, {"route": "<unmatched>", "method": "GET", "status": "404"}) == 1.0
    assert "/nope/42" not in text  # labels are route templates, never raw paths
    assert metric_value(text, "election_api_request_latency_seconds_count", {"route": "/predict"}) == 8.0
    assert metric_value(text, "election_prediction_confidence_count") == 12.0  # 7 single rows + 5 batch rows
    confidence = client.post("/predict", json=VALID_ROW).json()["confidence"]
    text = client.get("/metrics").text
    assert abs(metric_value(text, "election_prediction_confidence_sum") - 13 * confidence) < 1e-9
    manifest = ModelStore(store_dir).read_manifest(champion)
    assert metric_value(text, "election_model_accuracy") == manifest.metrics["accuracy"]


def test_metrics_content_type_is_one_valid_media_type(client):
    # A duplicated charset parameter (Litestar appends one to text/*) makes the header unparsable for Prometheus.
    content_type = client.get("/metrics").headers["content-type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset=") == 1, content_type


def test_process_metrics_are_exposed(client):
    text = client.get("/metrics").text
    assert metric_value(text, "process_resident_memory_bytes") > 0
    assert metric_value(text, "process_cpu_seconds_total") > 0
    assert metric_value(text, "process_open_fds") > 0


def test_accuracy_gauge_follows_the_swapped_model(client, store_dir, trained):
    from election_api_tests.conftest import publish

    publish(store_dir, trained.trees, trained, accuracy=0.123456)
    client.app.manager.poll_once()
    assert metric_value(client.get("/metrics").text, "election_model_accuracy") == 0.123456


def test_drift_gauge_follows_the_latest_report(client, settings):
    text = client.get("/metrics").text
    assert metric_value(text, "election_drift_detected") == 0.0
    assert metric_value(text, "election_drift_report_available") == 0.0
    write_drift(settings.reports_dir, drift=True)
    client.app.manager.poll_once()
    text = client.get("/metrics").text
    assert metric_value(text, "election_drift_detected") == 1.0
    assert metric_value(text, "election_drift_report_available") == 1.0
    assert client.get("/ready").json()["drift"]["dataset_drift"] is True
    write_drift(settings.reports_dir, drift=False)
    client.app.manager.poll_once()
    assert metric_value(client.get("/metrics").text, "election_drift_detected") == 0.0


def test_each_app_has_its_own_registry(settings, champion):
    with make_client(settings) as first, make_client(settings) as second:
        first.post("/predict", json=VALID_ROW)
        labels = {"route": "/predict", "method": "POST", "status": "200"}
        assert metric_value(first.get("/metrics").text, "election_api_requests_total", labels) == 1.0
        assert metric_value(second.get("/metrics").text, "election_api_requests_total", labels) is None


def test_settings_defaults_and_overrides(tmp_path):
    settings = ApiSettings.from_env({"ELECTION_DATA_DIR": str(tmp_path)})
    assert settings.model_store_dir == tmp_path / "model_store"
    assert settings.reports_dir == tmp_path / "reports"
    assert (settings.host, settings.port, settings.max_batch_rows) == ("127.0.0.1", 8000, 10_000)
    assert settings.reload_interval_seconds == 2.0 and settings.explain_top_n == 5 and settings.admin_token is None
    limits = (settings.max_explain_rows, settings.max_concurrent_batches, settings.batch_wait_seconds)
    assert limits == (1_000, 2, 10.0)
    custom = ApiSettings.from_env(
        {
            "ELECTION_MODEL_STORE": "/srv/store",
            "ELECTION_REPORTS_DIR": "/srv/reports",
            "PORT": "9000",
            "HOST": "0.0.0.0",
            "ELECTION_API_MAX_BATCH_ROWS": "500",
            "ELECTION_API_MAX_BODY_BYTES": "65536",  # noqa: S104
            "ELECTION_API_RELOAD_INTERVAL_SECONDS": "0.5",
            "LOG_LEVEL": "debug",
            "ELECTION_API_ADMIN_TOKEN": "t",
            "ELECTION_API_MAX_EXPLAIN_ROWS": "250",
            "ELECTION_API_MAX_CONCURRENT_BATCHES": "4",
            "ELECTION_API_BATCH_WAIT_SECONDS": "0",
        }
    )
    assert (custom.max_explain_rows, custom.max_concurrent_batches, custom.batch_wait_seconds) == (250, 4, 0.0)
    assert str(custom.model_store_dir) == "/srv/store" and str(custom.reports_dir) == "/srv/reports"
    assert (custom.port, custom.host, custom.max_batch_rows, custom.max_body_bytes) == (9000, "0.0.0.0", 500, 65536)  # noqa: S104
    assert custom.reload_interval_seconds == 0.5 and custom.log_level == "DEBUG" and custom.admin_token == "t"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("ELECTION_API_MAX_BATCH_ROWS", "0"),
        ("ELECTION_API_MAX_EXPLAIN_ROWS", "0"),
        ("ELECTION_API_MAX_CONCURRENT_BATCHES", "many"),
        ("ELECTION_API_BATCH_WAIT_SECONDS", "-1"),
        ("ELECTION_API_MAX_BODY_BYTES", "-1"),
        ("ELECTION_API_RELOAD_INTERVAL_SECONDS", "nan"),
        ("ELECTION_API_RELOAD_INTERVAL_SECONDS", "soon"),
        ("LOG_LEVEL", "LOUD"),
        ("ELECTION_MODEL_STORE", "relative/dir"),
        ("ELECTION_DATA_DIR", "data"),
        ("HOST", "a b"),
        ("ELECTION_API_ACCESS_LOG", "sometimes"),
        ("ELECTION_API_MODE", "forecast"),
        ("ELECTION_REAL_MODEL_STORE", "real_model_store"),
    ],
)
def test_invalid_settings_name_the_variable(variable, value):
    env = {variable: value}
    if variable == "ELECTION_REAL_MODEL_STORE":  # only real mode reads it
        env["ELECTION_API_MODE"] = "real"
    with pytest.raises(SettingsError, match=variable):
        ApiSettings.from_env(env)


FORBIDDEN = ("dagster", "mlflow", "evidently", "pandas", "sklearn", "xgboost")


def test_importing_and_creating_the_app_loads_no_pipeline_libraries(tmp_path):
    code = (
        "import sys\n"
        "from election_api.app import create_app\n"
        "from election_api.settings import ApiSettings\n"
        "import election_api.__main__\n"
        f"create_app(ApiSettings.from_env({{'ELECTION_DATA_DIR': {str(tmp_path)!r}}}))\n"
        f"create_app(ApiSettings.from_env({{'ELECTION_DATA_DIR': {str(tmp_path)!r}, 'ELECTION_API_MODE': 'real'}}))\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_store_paths_follow_the_environment():
    """``core.paths.StorePaths``: the one definition of where the pipeline publishes and the API serves from."""
    from pathlib import Path

    from election_assets.core.env import default_data_dir
    from election_assets.core.manifest import EXTERNAL, REAL, SYNTHETIC
    from election_assets.core.paths import StorePaths

    defaults = StorePaths.from_env({})
    assert defaults.data_dir == default_data_dir()
    assert defaults.model_store_dir == default_data_dir() / "model_store"
    assert defaults.real_model_store_dir == default_data_dir() / "real_model_store"
    assert defaults.drift_summary == default_data_dir() / "reports" / "drift" / "latest.json"
    custom = StorePaths.from_env({"ELECTION_DATA_DIR": "/srv/election", "ELECTION_REAL_MODEL_STORE": "/srv/real"})
    assert (custom.model_store_dir, custom.reports_dir) == (
        Path("/srv/election/model_store"),
        Path("/srv/election/reports"),
    )
    assert [custom.model_store_of(mode) for mode in (SYNTHETIC, EXTERNAL, REAL)] == [
        custom.model_store_dir,
        custom.model_store_dir,  # a file-fed history of the synthetic fields is served by the synthetic contract
        Path("/srv/real"),
    ]
    with pytest.raises(SettingsError, match="ELECTION_REPORTS_DIR='reports' must be an absolute path"):
        StorePaths.from_env({"ELECTION_REPORTS_DIR": "reports"})


@pytest.mark.parametrize("mode", ["synthetic", "real"])
def test_the_api_serves_from_the_store_its_mode_publishes_to(mode):
    from election_assets.core.paths import StorePaths

    for env in (
        {"ELECTION_API_MODE": mode},
        {"ELECTION_API_MODE": mode, "ELECTION_DATA_DIR": "/srv/election"},
        {"ELECTION_API_MODE": mode, "ELECTION_MODEL_STORE": "~/store", "ELECTION_REAL_MODEL_STORE": "/srv/real"},
    ):
        api, paths = ApiSettings.from_env(env), StorePaths.from_env(env)
        assert api.data_mode.name == mode and api.model_store_dir == paths.model_store_of(mode), env
        assert api.reports_dir == paths.reports_dir, env
        assert api.drift_report_path == (paths.drift_summary if mode == "synthetic" else None), env
