"""The whole graph, materialized once on small data (the ``materialized_pipeline`` fixture in conftest.py)."""

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from election_assets.core.features import FEATURE_NAMES
from election_assets.core.model_store import ModelStore
from election_assets.core.paths import drift_summary_path
from election_assets.core.schema import INPUT_FIELD_NAMES
from election_assets.core.synthetic import BayesMetrics, generate_regions, label_probability
from election_assets.modelling.candidates import CANDIDATES, METRIC_NAMES
from election_assets.summary import render

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def mlflow_tracking(uri: str):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def run(materialized_pipeline):
    return materialized_pipeline


@pytest.fixture(scope="module")
def materializations(run):
    events = run.result.get_asset_materialization_events()
    return {e.asset_key.to_user_string(): e.materialization for e in events}


def test_every_asset_materializes_in_one_run(run, materializations):
    assert run.result.success
    # Every asset of the main job, which is the whole graph but real mode (it has jobs of its own).
    job_assets = run.sandbox.definitions().resolve_job_def("election_pipeline").asset_layer.selected_asset_keys
    assert set(materializations) == {key.to_user_string() for key in job_assets}
    assert not {"raw_county_returns", "county_returns"} & set(materializations)


def test_every_asset_check_passes_on_clean_data(run):
    evaluations = run.result.get_asset_check_evaluations()
    assert len(evaluations) == 9
    failed = [(e.asset_key.to_user_string(), e.check_name, e.description) for e in evaluations if not e.passed]
    assert failed == []


def test_definitions_load_without_deprecation_warnings(session_sandbox):
    # In a fresh interpreter: this one imported the modules when it collected the tests, so their import-time
    # warnings were raised before any test could record them. FutureWarning is the deprecation category meant
    # for users of a library (Dagster's SupersessionWarning is one); Dagster's beta and preview warnings are
    # neither, so they pass.
    load = "from election_assets.definitions import defs; defs().resolve_all_job_defs()"
    completed = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-W", "error::FutureWarning", "-c", load],
        env={**os.environ, **session_sandbox.env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr


def test_data_assets_report_their_fingerprint_as_data_version(materializations, session_sandbox):
    asset_graph = session_sandbox.definitions().resolve_asset_graph()
    for name in ("raw_regions", "current_regions", "cleaned_regions", "region_features", "batch_predictions"):
        materialization = materializations[name]
        assert materialization.tags["dagster/data_version"] == materialization.metadata["fingerprint"].value
        assert asset_graph.get(dg.AssetKey(name)).code_version == "1"


def test_raw_asset_metadata_has_the_exact_bayes_rate(run, materializations):
    # p(x) recomputed from the generator's covariates for the run's seed and size; the generator corrupts rows
    # after drawing the labels, so the same regions without corruption have the same covariates and p(x).
    feed = run.result.dagster_run.run_config["ops"]["raw_regions"]["config"]
    regions = generate_regions(feed["n_regions"], feed["seed"], dirty_fraction=0.0)
    bayes = BayesMetrics.of(label_probability(regions[list(INPUT_FIELD_NAMES)].to_numpy(np.float64)))
    metadata = materializations["raw_regions"].metadata
    assert metadata["bayes_optimal_accuracy"].value == pytest.approx(bayes.accuracy, rel=1e-12)
    assert metadata["bayes_brier"].value == pytest.approx(bayes.brier, rel=1e-12)


def test_cleaning_reports_drops_per_reason(materializations):
    dropped = materializations["cleaned_regions"].metadata["dropped_by_reason"].value
    assert set(dropped) == {"missing_value", "inconsistent_polls", "outlier"}
    # The generator corrupts 2 % of 20,000 rows, a third for each reason; each corruption must be caught.
    assert all(count >= 130 for count in dropped.values()), dropped


def test_champion_is_within_one_and_a_half_points_of_bayes(run, materializations):
    metadata = materializations["champion_model"].metadata
    gap = metadata["accuracy_gap_to_bayes"].value
    assert gap < 0.015, f"champion is {gap:.2%} below the Bayes-optimal accuracy"
    assert 0.0 <= metadata["expected_accuracy_gap_to_bayes"].value < 0.015
    manifest = ModelStore(run.sandbox.settings().model_store_dir).load().manifest
    assert manifest.bayes.accuracy_gap_to_bayes == pytest.approx(gap)
    client = MlflowClient(run.sandbox.env["MLFLOW_TRACKING_URI"])
    mlflow_run = client.get_run(manifest.source_run.mlflow_run_id)
    assert mlflow_run.data.metrics["accuracy_gap_to_bayes"] == pytest.approx(gap)


def test_mlflow_has_one_run_per_candidate_with_params_metrics_and_a_model(run, materializations):
    settings = run.sandbox.settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    # Marked as a model-training experiment; MLflow 3's UI still opens its GenAI view unless the link asks for the
    # model-training one, so make demo's summary prints such a link.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert link in render(settings)
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.candidate != ''")
    assert sorted(r.data.tags["candidate"] for r in runs) == sorted(spec.name for spec in CANDIDATES)
    search_spaces = {spec.name: spec.search_space for spec in CANDIDATES}
    for candidate_run in runs:
        name = candidate_run.data.tags["candidate"]
        searched = {
            key.removeprefix("search."): value
            for key, value in candidate_run.data.params.items()
            if key.startswith("search.")
        }
        best_params = materializations[f"candidate_{name}"].metadata["best_params"].value
        assert set(searched) == set(search_spaces[name])
        assert searched == {key: str(value) for key, value in best_params.items()}  # MLflow keeps params as text
        for metric in METRIC_NAMES:
            assert f"cv_{metric}" in candidate_run.data.metrics
            assert f"test_{metric}" in candidate_run.data.metrics
        run_filter = f"source_run_id = '{candidate_run.info.run_id}'"
        models = client.search_logged_models([experiment.experiment_id], filter_string=run_filter)
        assert len(models) == 1
        with mlflow_tracking(settings.mlflow_tracking_uri):
            signature = mlflow.models.get_model_info(models[0].model_uri).signature
        assert signature is not None and len(signature.inputs.input_names()) == len(FEATURE_NAMES)


def test_registry_alias_champion_matches_the_model_store_manifest(run):
    settings = run.sandbox.settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    stored = ModelStore(settings.model_store_dir).load()
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    source = stored.manifest.source_run
    assert str(champion.version) == source.registered_version
    assert champion.run_id == source.mlflow_run_id
    assert champion.tags["training_data_fingerprint"] == stored.manifest.training_data_fingerprint


def test_manifest_records_training_data_fingerprint(run, materializations):
    manifest = ModelStore(run.sandbox.settings().model_store_dir).load().manifest
    assert manifest.training_data_fingerprint == materializations["region_features"].metadata["fingerprint"].value
    for key in ("version", "trained_at", "source_run", "metrics", "feature_names", "input_schema", "library_versions"):
        assert getattr(manifest, key)


def test_batch_predictions_and_drift_report_are_written(run, materializations):
    settings = run.sandbox.settings()
    predictions = pd.read_csv(settings.reports_dir / "predictions" / "batch_predictions.csv")
    assert len(predictions) == materializations["cleaned_current_regions"].metadata["rows"].value
    assert set(predictions["model_version"]) == {ModelStore(settings.model_store_dir).latest_version()}
    summary = json.loads(drift_summary_path(settings.reports_dir).read_text())
    drift = materializations["drift_report"].metadata
    assert summary["drift_share"] == drift["drift_share"].value
    assert summary["drifted_columns"] == drift["drifted_columns"].value
    html_reports = list((settings.reports_dir / "drift").glob("*/drift_report.html"))
    assert Path(summary["report_html"]) in html_reports
    # The page says what the batch was compared with: the served champion's held-out rows.
    champion = ModelStore(settings.model_store_dir).latest_version()
    page = Path(summary["report_html"]).read_text()
    assert f"Reference: {summary['reference_rows']} held-out rows of champion {champion}" in page
    assert drift["reference_model_version"].value == champion
    assert Path(summary["report_json"]).is_file()
    assert drift["report_json"].value == summary["report_json"]
    assert summary["dataset_drift"] is False  # the default current batch has no drift
