"""End to end: the API serving the models the real pipelines published, in synthetic mode (it reproduces the
manifest's held-out accuracy) and in real mode (it reproduces the county forecast file)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
from litestar.testing import TestClient

from election_api.app import create_app
from election_api.settings import ApiSettings
from election_assets.core.model_store import ModelStore
from election_assets.core.paths import drift_summary_path
from election_assets.core.schema import FIELDS_BY_NAME, INPUT_FIELD_NAMES, LABEL


def test_api_accuracy_on_the_holdout_equals_the_manifest(materialized_pipeline):
    pipeline_settings = materialized_pipeline.sandbox.settings()
    store = ModelStore(pipeline_settings.model_store_dir)
    version = store.latest_version()
    assert version is not None, "the pipeline published no champion"
    manifest = store.read_manifest(version)
    with open(store.version_dir(version) / "holdout.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = [
        {name: (int(r[name]) if FIELDS_BY_NAME[name].kind == "int" else float(r[name])) for name in INPUT_FIELD_NAMES}
        for r in records
    ]
    winners = [r[LABEL] for r in records]
    assert len(rows) == manifest.holdout_rows

    settings = ApiSettings(
        model_store_dir=pipeline_settings.model_store_dir,
        reports_dir=pipeline_settings.reports_dir,
        reload_interval_seconds=3600.0,
        access_log=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["model_version"] == version
        body = client.post("/predict/batch", json={"rows": rows}).json()
        predictions = body["predictions"]
        assert body["model_version"] == version and len(predictions) == len(rows)
        accuracy = float(np.mean([p["predicted_winner"] == w for p, w in zip(predictions, winners, strict=True)]))
        assert abs(accuracy - manifest.metrics["accuracy"]) < 1e-9

        # The same rows one by one give the same answers (a sample keeps the test fast).
        step = max(1, len(rows) // 150)
        for index in range(0, len(rows), step):
            assert client.post("/predict", json=rows[index]).json() == predictions[index]

        text = client.get("/metrics").text
        assert f"election_model_accuracy {manifest.metrics['accuracy']!r}" in text
        drift = json.loads(drift_summary_path(pipeline_settings.reports_dir).read_text())
        assert f"election_drift_detected {1.0 if drift['dataset_drift'] else 0.0}" in text


def test_api_in_real_mode_reproduces_the_published_county_forecast(real_pipeline, next_election_counties):
    """``make real`` then ``make serve-real``: the API answers the next election's counties exactly as the
    forecast file the pipeline wrote with the same published model."""
    import pandas as pd

    from election_assets.core.data_modes import REAL_MODE
    from election_assets.real.features import NEXT_ELECTION

    sandbox, _ = real_pipeline
    pipeline_settings = sandbox.settings()
    settings = ApiSettings.from_env(sandbox.env | {"ELECTION_API_MODE": "real"})
    assert settings.data_mode is REAL_MODE and settings.model_store_dir == pipeline_settings.real_model_store_dir
    inputs = next_election_counties[list(REAL_MODE.input_field_names)]
    rows = [{name: value for name, value in row.items() if pd.notna(value)} for row in inputs.to_dict("records")]
    with TestClient(create_app(replace(settings, reload_interval_seconds=3600.0, access_log=False))) as client:
        info = client.get("/model/info").json()
        assert (info["data_mode"], info["trained_through"], info["forecast_year"]) == ("real", 2020, NEXT_ELECTION)
        response = client.post("/predict/batch", json={"rows": rows})
        assert response.status_code == 200, response.text[:500]
        served = [p["probabilities"]["Candidate_A"] for p in response.json()["predictions"]]
        step = max(1, len(rows) // 100)
        for index in range(0, len(rows), step):
            assert client.post("/predict", json=rows[index]).json()["probabilities"]["Candidate_A"] == served[index]
    forecast = pd.read_csv(
        pipeline_settings.reports_dir / "real" / "forecast" / f"forecast_county_{NEXT_ELECTION}.csv",
        dtype={"county_fips": str},
        float_precision="round_trip",
    ).set_index("county_fips")
    assert len(rows) == len(forecast) > 3_000
    assert forecast.loc[next_election_counties["county_fips"], "p_candidate_a"].tolist() == served
