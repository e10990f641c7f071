"""Monitoring: the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`, each alert
made to fire and not to fire), the Grafana files parse and cover the promised panels, and every election_* metric an
alert or a panel uses is one the real API exposes on /metrics, or, for election_live_*, one the live updater's
registry (election_assets/live/metrics.py) defines."""

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
    "ElectionLiveConsumerLagHigh",
    "ElectionLiveDeadLetters",
    "ElectionLiveUpdaterDown",
    "ElectionLiveUpdatesStalled",
}
# Series that come from outside the API (cAdvisor, kube-state-metrics); allowed in rules and panels.
EXTERNAL = {
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_resource_limits",
}
# Series Prometheus writes itself for every target it scrapes.
PROMETHEUS = {"up"}
LIVE_PREFIX = "election_live_"
LIVE_JOB = "election-live-updater"


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
@pytest.mark.parametrize(
    ("original", "broken", "alert"),
    [
        ("< 0.80", "< 0.10", "ElectionModelAccuracyLow"),
        ("(election_live_consumer_lag_messages) > 1000", "(election_live_consumer_lag_messages) > 100000", None),
        ("[10m])) > 0", "[10m])) > 5", "ElectionLiveDeadLetters"),
        ('up{job="election-live-updater"} == 0', 'up{job="election-live-updater"} == 2', "ElectionLiveUpdaterDown"),
    ],
)
def test_unit_tests_catch_a_broken_threshold(tmp_path, original, broken, alert):
    """The unit tests are not vacuous: raising a threshold out of reach makes promtool fail."""
    text = (PROMETHEUS_DIR / "alerts.yml").read_text()
    assert text.count(original) == 1, original
    (tmp_path / "alerts.yml").write_text(text.replace(original, broken))
    (tmp_path / "alerts_test.yml").write_text((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    result = subprocess.run(  # noqa: S603
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert (alert or "ElectionLiveConsumerLagHigh") in result.stdout + result.stderr


def test_alert_thresholds():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    latency = rules["ElectionApiHighLatencyP99"]["expr"]
    assert "histogram_quantile(0.99" in latency and "election_api_request_latency_seconds_bucket" in latency
    assert latency.strip().endswith("> 1")
    errors = rules["ElectionApiHighErrorRate"]["expr"]
    assert 'status=~"5.."' in errors and errors.strip().endswith("> 0.05")
    assert rules["ElectionDriftDetected"]["expr"].strip().endswith("election_drift_detected) == 1")
    assert rules["ElectionModelAccuracyLow"]["expr"].strip().endswith("< 0.80")
    # Election night: the lag alert the issue asks for (over 1000 messages for 2 minutes), and its companions.
    lag = rules["ElectionLiveConsumerLagHigh"]
    assert lag["expr"].strip() == "max by (namespace) (election_live_consumer_lag_messages) > 1000"
    assert lag["for"] == "2m"
    assert "election_live_messages_dead_lettered_total" in rules["ElectionLiveDeadLetters"]["expr"]
    assert "reason" in rules["ElectionLiveDeadLetters"]["expr"]
    assert rules["ElectionLiveUpdaterDown"]["expr"].strip() == f'up{{job="{LIVE_JOB}"}} == 0'
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
    # The live updater: scraped like the API (the same discovery and relabelling), kept by its own pod label; and on
    # its default port locally.
    updater = jobs[LIVE_JOB]
    assert updater["kubernetes_sd_configs"] == api["kubernetes_sd_configs"]
    updater_keep = [r for r in updater["relabel_configs"] if r.get("action") == "keep"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "action": "keep",
        "regex": LIVE_JOB,
    } in updater_keep
    assert [r for r in updater["relabel_configs"] if r not in updater_keep] == [r for r in relabels if r not in keep]
    assert [r for r in updater_keep if "app_kubernetes_io_name" not in r["source_labels"][0]] == [
        r for r in keep if "app_kubernetes_io_name" not in r["source_labels"][0]
    ]
    assert jobs[f"{LIVE_JOB}-local"]["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    # NATS's exporter sidecar of the Helm release "nats" (k8s/nats/values.yaml), on its port only.
    nats_keep = {r["regex"] for r in jobs["nats"]["relabel_configs"] if r.get("action") == "keep"}
    assert {"nats;nats", "7777"} <= nats_keep


def test_the_updater_down_alert_watches_the_updater_job():
    """`up{job=...}` names a scrape job of prometheus.yml: a renamed job would leave the alert silent forever."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert LIVE_JOB in jobs
    assert f'job="{LIVE_JOB}"' in rules["ElectionLiveUpdaterDown"]["expr"]


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
        if panel["type"] == "row":  # a row only groups the panels below it
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def _panels_by_row(dashboard: dict) -> dict[str, list[dict]]:
    """The panels under each (expanded) row, by the row's title; "" for those above the first row."""
    rows: dict[str, list[dict]] = {"": []}
    current = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = list(panel.get("panels", []))
            continue
        rows[current].append(panel)
    return rows


def test_election_night_row(dashboard):
    rows = _panels_by_row(dashboard)
    assert "Election night" in rows
    (row,) = [panel for panel in dashboard["panels"] if panel["type"] == "row" and panel["title"] == "Election night"]
    assert row["collapsed"] is False and row["gridPos"]["w"] == 24
    panels = rows["Election night"]
    assert all(panel["gridPos"]["y"] > row["gridPos"]["y"] for panel in panels)
    exprs = {panel["title"]: " ".join(t["expr"] for t in panel["targets"]) for panel in panels}

    def panel_with(fragment: str) -> str:
        found = [title for title, expr in exprs.items() if fragment in expr]
        assert found, fragment
        return found[0]

    assert "rate(election_live_messages_applied_total" in exprs[panel_with("election_live_messages_applied_total")]
    dead = panel_with("election_live_messages_dead_lettered_total")
    assert "sum by (reason) (rate(" in exprs[dead] and "reason" in dead.lower()
    assert "lag" in panel_with("election_live_consumer_lag_messages").lower()
    latency = exprs[panel_with("election_live_update_latency_seconds_bucket")]
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.99," in latency
    assert "called" in panel_with("election_live_states_called").lower()
    assert "probability" in panel_with("election_live_national_p_dem").lower()
    # Every election_live_* series is charted only in this row, and the row charts nothing else.
    for panel in (p for title, ps in rows.items() if title != "Election night" for p in ps):
        assert "election_live_" not in " ".join(t["expr"] for t in panel["targets"]), panel["title"]
    for title, expr in exprs.items():
        assert all(name.startswith(LIVE_PREFIX) for name in metric_names(expr)), title
        assert 'namespace=~"$namespace"' in expr, title


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


def _samples(exposition: str, *, family_names: bool = True) -> dict[str, str]:
    """{sample name: family type} of a Prometheus text exposition, with the family names too unless told not."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, str] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples[sample.name] = family.type
        if family_names:
            samples.setdefault(family.name, family.type)
    return samples


@pytest.fixture(scope="module")
def live_exposed() -> dict[str, str]:
    """{sample name: family type} the live updater serves: its registry (election_assets/live/metrics.py), as
    prometheus_client writes it on /metrics (Counters get _total; every dead-letter reason is there from the start)."""
    from prometheus_client import generate_latest

    from election_assets.live.metrics import LiveMetrics

    # Sample names only: a Counter's family name (without _total) selects nothing in PromQL.
    return _samples(generate_latest(LiveMetrics().registry).decode(), family_names=False)


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> dict[str, str]:
    """{sample name: family type} from the real app's /metrics, after one request (labelled series appear then)."""
    from litestar.testing import TestClient

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
    return _samples(response.text)


def test_the_app_exposes_the_contract(exposed):
    for name, kind in CONTRACT.items():
        if kind == "histogram":
            for suffix in HISTOGRAM_SUFFIXES:
                assert exposed.get(name + suffix) == "histogram", name + suffix
        else:
            assert exposed.get(name) == kind, name


def test_every_metric_used_exists(dashboard, exposed, live_exposed):
    used = _used_names(dashboard)
    assert any(name.startswith("election_") for name in used)
    assert any(name.startswith(LIVE_PREFIX) for name in used)
    unknown = {}
    for name, where in used.items():
        if name in EXTERNAL or name in PROMETHEUS:
            continue
        # election_live_* must come from the live updater's registry; anything else (election_*, process_*, ...)
        # from the API itself (its registry includes a ProcessCollector, so process_* are exposed).
        source = live_exposed if name.startswith(LIVE_PREFIX) else exposed
        if name in source:
            if name.endswith(HISTOGRAM_SUFFIXES) and base_name(name) != name:
                assert source[name] == "histogram", name
            continue
        unknown[name] = sorted(where)
    assert not unknown, f"metrics used in rules/dashboards but not exposed by the API or the live updater: {unknown}"


def test_the_live_metric_check_is_not_vacuous(live_exposed):
    """The registry read above is the updater's real one, with the exposition's names: a Counter's samples end in
    _total, so the family name without it (or a misspelling) is not a sample PromQL could select."""
    assert live_exposed["election_live_messages_applied_total"] == "counter"
    assert live_exposed["election_live_messages_dead_lettered_total"] == "counter"
    assert live_exposed["election_live_consumer_lag_messages"] == "gauge"
    assert live_exposed["election_live_update_latency_seconds_bucket"] == "histogram"
    assert not any(name.startswith(LIVE_PREFIX) for name in EXTERNAL | PROMETHEUS)
    assert "election_live_messages_applied" not in live_exposed
    assert "election_live_consumer_lag" not in live_exposed


def test_every_live_metric_is_alerted_or_charted(dashboard):
    """Each metric the updater defines is on the dashboard or in an alert, under its exposition name."""
    from election_assets.live.metrics import LiveMetrics

    used = {base_name(name) for name in _used_names(dashboard)}
    defined = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in LiveMetrics().registry.collect()
    }
    assert len(defined) == 8 and all(name.startswith(LIVE_PREFIX) for name in defined), defined
    assert defined <= used, defined - used


def test_every_contract_metric_is_alerted_or_charted(dashboard):
    used = {base_name(name) for name in _used_names(dashboard)}
    assert set(CONTRACT) <= used, set(CONTRACT) - used
