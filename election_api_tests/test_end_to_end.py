"""End to end: the API serving the champion the real pipeline published reproduces the manifest's accuracy."""

from __future__ import annotations

import csv
import json

import numpy as np
from litestar.testing import TestClient

from election_api.app import create_app
from election_api.settings import ApiSettings
from election_assets.core.model_store import ModelStore
from election_assets.core.schema import FIELDS_BY_NAME, INPUT_FIELD_NAMES, LABEL


def test_api_accuracy_on_the_holdout_equals_the_manifest(materialized_pipeline):
    pipeline_settings = materialized_pipeline.sandbox.settings()
    store = ModelStore(pipeline_settings.model_store_dir)
    version = store.latest_version()
    assert version is not None, "the pipeline published no champion"
    manifest = json.loads((store.version_dir(version) / "manifest.json").read_text())
    with open(store.version_dir(version) / "holdout.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = [
        {name: (int(r[name]) if FIELDS_BY_NAME[name].kind == "int" else float(r[name])) for name in INPUT_FIELD_NAMES}
        for r in records
    ]
    winners = [r[LABEL] for r in records]
    assert len(rows) == manifest["holdout_rows"]

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
        assert abs(accuracy - manifest["metrics"]["accuracy"]) < 1e-9

        # The same rows one by one give the same answers (a sample keeps the test fast).
        step = max(1, len(rows) // 150)
        for index in range(0, len(rows), step):
            assert client.post("/predict", json=rows[index]).json() == predictions[index]

        text = client.get("/metrics").text
        assert f"election_model_accuracy {float(manifest['metrics']['accuracy'])!r}" in text
        drift = json.loads((pipeline_settings.reports_dir / "drift" / "latest.json").read_text())
        assert f"election_drift_detected {1.0 if drift['dataset_drift'] else 0.0}" in text
