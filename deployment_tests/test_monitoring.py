"""Monitoring: the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`, each alert
made to fire and not to fire), the Grafana files parse and cover the promised panels, and every election_* metric an
alert or a panel uses is one the real API exposes on /metrics."""

from __future__ import annotations

import json
import subprocess  # noqa: S404 - runs the local promtool only

import pytest
import yaml

from deployment_tests.deploy_helpers import (
    HISTOGRAM_SUFFIXES,
    MONITORING_DIR,
    alert_rules,
    base_name,
    dashboard_exprs,
    metric_names,
    promtool,
)

PROMTOOL = promtool()
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: apt-get install -y prometheus (Debian) provides /usr/bin/promtool"
)
PROMETHEUS_DIR = MONITORING_DIR / "prometheus"
DASHBOARD = MONITORING_DIR / "grafana" / "dashboards" / "election-api.json"
# The API's metric contract (election_api/metrics.py); histograms by their base name.
CONTRACT = {
    "election_api_requests_total": "counter",
    "election_api_request_latency_seconds": "histogram",
    "election_prediction_confidence": "histogram",
    "election_drift_detected": "gauge",
    "election_model_accuracy": "gauge",
}
REQUIRED_ALERTS = {
    "ElectionApiHighLatencyP99",
    "ElectionApiHighErrorRate",
    "ElectionDriftDetected",
    "ElectionModelAccuracyLow",
    "ElectionApiHighCpu",
    "ElectionApiHighMemory",
    "ElectionApiCrashLooping",
}
# Series that come from outside the API (cAdvisor, kube-state-metrics); allowed in rules and panels.
EXTERNAL = {
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_resource_limits",
}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )


@needs_promtool
def test_promtool_check_rules():
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass():
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing():
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    firing, silent = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= REQUIRED_ALERTS
    assert firing == names, f"alerts never shown firing: {names - firing}"
    assert silent == names, f"alerts never shown silent: {names - silent}"


@needs_promtool
def test_unit_tests_catch_a_broken_threshold(tmp_path):
    """The unit tests are not vacuous: raising a threshold out of reach makes promtool fail."""
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text().replace("< 0.80", "< 0.10")
    (tmp_path / "alerts.yml").write_text(rules)
    (tmp_path / "alerts_test.yml").write_text((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    result = subprocess.run(  # noqa: S603
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ElectionModelAccuracyLow" in result.stdout + result.stderr


def test_alert_thresholds():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    latency = rules["ElectionApiHighLatencyP99"]["expr"]
    assert "histogram_quantile(0.99" in latency and "election_api_request_latency_seconds_bucket" in latency
    assert latency.strip().endswith("> 1")
    errors = rules["ElectionApiHighErrorRate"]["expr"]
    assert 'status=~"5.."' in errors and errors.strip().endswith("> 0.05")
    assert rules["ElectionDriftDetected"]["expr"].strip().endswith("election_drift_detected) == 1")
    assert rules["ElectionModelAccuracyLow"]["expr"].strip().endswith("< 0.80")
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["for"]


def test_prometheus_config():
    # `promtool check config` is not usable here: Debian's Prometheus build leaves out kubernetes_sd_configs.
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["election-api"]
    assert api["kubernetes_sd_configs"][0]["role"] == "pod"
    relabels = api["relabel_configs"]
    keep = [r for r in relabels if r.get("action") == "keep"]
    assert any(
        r["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] and r["regex"] == "true"
        for r in keep
    )
    targets = {r.get("target_label"): r for r in relabels}
    assert targets["__metrics_path__"]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_path"]
    assert "__meta_kubernetes_pod_annotation_prometheus_io_port" in targets["__address__"]["source_labels"]
    assert targets["namespace"]["source_labels"] == ["__meta_kubernetes_namespace"]
    assert jobs["election-api-local"]["static_configs"][0]["targets"] == ["127.0.0.1:8000"]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_panels(dashboard):
    assert dashboard["uid"] == "election-api" and dashboard["title"]
    exprs = "\n".join(dashboard_exprs(dashboard))
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for word in ("request rate", "latency", "error rate", "accuracy", "drift", "confidence", "cpu", "memory"):
        assert word in titles, word
    assert "histogram_quantile(0.95" in exprs and "histogram_quantile(0.99" in exprs
    assert any(panel["type"] == "heatmap" for panel in dashboard["panels"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_grafana_provisioning():
    datasources = yaml.safe_load((MONITORING_DIR / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus" and source["url"].startswith("http")
    dashboards = yaml.safe_load((MONITORING_DIR / "grafana/provisioning/dashboards/election.yml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_metric_name_extraction():
    assert metric_names(
        "histogram_quantile(0.99, sum by (namespace, le) (rate(election_api_request_latency_seconds_bucket"
        '{route="/predict"}[5m]))) > 1'
    ) == {"election_api_request_latency_seconds_bucket"}
    assert metric_names(
        'sum(rate(a_total{namespace=~"$namespace"}[$__rate_interval])) / on(pod) group_left(node) b offset 5m'
    ) == {"a_total", "b"}
    assert metric_names("max by (namespace) (election_drift_detected) == bool 1 and nan < 2e3") == {
        "election_drift_detected"
    }


def _used_names(dashboard: dict) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for expr in dashboard_exprs(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, set()).add("dashboard")
    return used


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> dict[str, str]:
    """{sample name: family type} from the real app's /metrics, after one request (labelled series appear then)."""
    from litestar.testing import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from election_api.app import create_app
    from election_api.settings import ApiSettings

    root = tmp_path_factory.mktemp("metrics_app")
    (root / "model_store").mkdir()
    settings = ApiSettings(
        model_store_dir=root / "model_store",
        reports_dir=root / "reports",
        reload_interval_seconds=3600.0,
        access_log=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name] = family.type
        samples.setdefault(family.name, family.type)
    return samples


def test_the_app_exposes_the_contract(exposed):
    for name, kind in CONTRACT.items():
        if kind == "histogram":
            for suffix in HISTOGRAM_SUFFIXES:
                assert exposed.get(name + suffix) == "histogram", name + suffix
        else:
            assert exposed.get(name) == kind, name


def test_every_metric_used_exists(dashboard, exposed):
    used = _used_names(dashboard)
    assert any(name.startswith("election_") for name in used)
    unknown = {}
    for name, where in used.items():
        if name in EXTERNAL:
            continue
        # Anything else (election_*, process_*, ...) must come from the API itself (its registry includes a
        # ProcessCollector, so process_* are exposed).
        if name in exposed:
            if name.endswith(HISTOGRAM_SUFFIXES) and base_name(name) != name:
                assert exposed[name] == "histogram", name
            continue
        unknown[name] = sorted(where)
    assert not unknown, f"metrics used in rules/dashboards but not exposed by the API: {unknown}"


def test_every_contract_metric_is_alerted_or_charted(dashboard):
    used = {base_name(name) for name in _used_names(dashboard)}
    assert set(CONTRACT) <= used, set(CONTRACT) - used
