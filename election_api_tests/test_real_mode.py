"""The API in real mode (``ELECTION_API_MODE=real``): the same routes serve a county model, with real mode's input
contract (12 fields, polls optional), its features from the shared module, and a model info that names the mode
and the year the model was trained through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from election_api.app import create_app
from election_api.settings import ApiSettings
from election_api_tests.conftest import VALID_ROW, RealModel, metric_value, publish, publish_real, write_drift
from election_assets.core.data_modes import REAL_MODE
from election_assets.core.real_features import REAL_INPUT_FIELD_NAMES, REAL_MODEL_COLUMNS, real_model_features

PREDICTION_KEYS = {"predicted_winner", "confidence", "probabilities", "model_version"}


@pytest.fixture
def real_settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(
        model_store_dir=tmp_path / "real_model_store",
        reports_dir=tmp_path / "reports",
        data_mode=REAL_MODE,
        reload_interval_seconds=3600.0,
        access_log=False,
    )


@pytest.fixture
def real_version(real_settings: ApiSettings, real_model: RealModel) -> str:
    return publish_real(real_settings.model_store_dir, real_model)


@pytest.fixture
def real_client(real_settings: ApiSettings, real_version: str) -> Iterator[TestClient]:
    with TestClient(create_app(real_settings)) as client:
        yield client


def _inputs(row: dict[str, float]) -> np.ndarray:
    return np.array([[row.get(name, np.nan) for name in REAL_INPUT_FIELD_NAMES]], dtype=np.float64)


def test_model_info_names_the_mode_and_the_year_trained_through(real_client, real_version):
    info = real_client.get("/model/info").json()
    assert info["version"] == real_version and info["data_mode"] == "real"
    assert (info["trained_through"], info["forecast_year"]) == (2020, 2024)
    assert info["training_years"] == [2008, 2012, 2016, 2020]
    assert info["metrics_source"].startswith("walk-forward backtest 2020")
    assert info["feature_names"] == list(REAL_MODEL_COLUMNS)
    # The noise parts the forecaster's intervals come from, under the manifest contract's names.
    assert set(info["noise"]) == {"polled", "unpolled"}
    assert set(info["noise"]["polled"]) == {"national", "state", "county", "source"}
    ready = real_client.get("/ready").json()
    assert ready["status"] == "ready" and ready["data_mode"] == "real"
    assert real_client.get("/").json()["data_mode"] == "real"


def test_a_county_is_scored_with_the_shared_real_features(real_client, real_model, real_version):
    polled, unpolled = real_model.rows(2)[0], dict(real_model.rows(2)[0])
    assert "poll_dem_share" in polled
    del unpolled["poll_dem_share"]
    answers = []
    for row in (polled, unpolled, unpolled | {"poll_dem_share": None}):
        response = real_client.post("/predict", json=row)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == PREDICTION_KEYS and body["model_version"] == real_version
        expected = float(real_model.probability(_inputs(row))[0])
        assert body["probabilities"] == {"Candidate_A": expected, "Candidate_B": 1.0 - expected}
        assert body["predicted_winner"] == ("Candidate_A" if expected >= 0.5 else "Candidate_B")
        assert body["confidence"] == max(expected, 1.0 - expected)
        answers.append(expected)
    # Without polls the state swing is unknown and the spread wider: a different answer, the same with null.
    assert answers[0] != answers[1] and answers[1] == answers[2]


def test_a_batch_equals_single_predictions_and_the_model(real_client, real_model):
    rows = real_model.rows(80)
    assert any("poll_dem_share" not in row for row in rows) and any("poll_dem_share" in row for row in rows)
    body = real_client.post("/predict/batch", json={"rows": rows}).json()
    assert body["count"] == 80
    assert [p["probabilities"]["Candidate_A"] for p in body["predictions"]] == pytest.approx(
        real_model.probability(real_model.inputs[:80]).tolist(), abs=1e-12
    )
    assert [real_client.post("/predict", json=row).json() for row in rows[:20]] == body["predictions"][:20]


def test_explanations_add_up_to_the_forecast_share(real_client, real_model):
    row = real_model.rows(1)[0]
    body = real_client.post(f"/predict?explain=true&top={len(REAL_MODEL_COLUMNS)}", json=row).json()
    explanation = body["explanation"]
    assert explanation["space"] == "share"
    assert {item["feature"] for item in explanation["top_features"]} == set(REAL_MODEL_COLUMNS)
    columns = real_model_features(_inputs(row))[0]
    for item in explanation["top_features"]:  # each value is the named model column of this row
        assert item["value"] == columns[REAL_MODEL_COLUMNS.index(item["feature"])], item
    share = explanation["bias"] + sum(item["contribution"] for item in explanation["top_features"])
    assert share == pytest.approx(real_model.model.predict_share(real_model_features(_inputs(row)))[0], abs=1e-9)
    too_many = real_client.post(f"/predict?explain=true&top={len(REAL_MODEL_COLUMNS) + 1}", json=row)
    assert too_many.status_code == 400


def _county(**changes) -> dict:
    row = {
        "prev_dem_share": 0.42,
        "prev2_dem_share": 0.45,
        "state_prev_dem_share": 0.48,
        "state_prev2_dem_share": 0.5,
        "prev_total_votes": 25_000,
        "prev2_total_votes": 24_000,
        "bachelor_rate": 0.22,
        "less_hs_rate": 0.12,
        "rural_urban_code": 4,
        "unemployment_rate": 4.1,
        "prev_unemployment_rate": 5.0,
        "poll_dem_share": 0.49,
    }
    return {key: value for key, value in (row | changes).items() if value is not ...}


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        (_county(prev_dem_share=...), 422, "$.prev_dem_share", "missing required field"),
        (_county(population=52_000), 422, "$.population", "unknown field"),
        (VALID_ROW, 422, "$.population", "unknown field"),
        (_county(bachelor_rate=1.2), 422, "$.bachelor_rate", "<= 1.0"),
        (_county(rural_urban_code=0), 422, "$.rural_urban_code", ">= 1.0"),
        (_county(prev_total_votes=0), 422, "$.prev_total_votes", ">= 1"),
        (_county(prev_total_votes=2**70), 422, "$.prev_total_votes", "an integer > 0 and <= 20,000,000"),
        (_county(prev2_total_votes=20_000_001), 422, "$.prev2_total_votes", "<= 20000000:"),
        (_county(unemployment_rate=100.5), 422, "$.unemployment_rate", "a number >= 0 and <= 100"),
        (_county(prev_total_votes=25_000.5), 422, "$.prev_total_votes", "fractional part"),
        (_county(unemployment_rate="high"), 422, "$.unemployment_rate", "Expected `float`, got `str`"),
        (_county(poll_dem_share="none"), 422, "$.poll_dem_share", "Expected `float | null`, got `str`"),
    ],
)
def test_bad_county_rows_name_the_field(real_client, body, status, field, reason):
    response = real_client.post("/predict", json=body)
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field and reason in error["reason"], error


def test_non_finite_and_batch_errors_name_the_row_and_field(real_client):
    text = '{"rows": [%s, %s]}'
    good = '{"prev_dem_share": 0.4, "prev2_dem_share": 0.4, "state_prev_dem_share": 0.4, '
    good += '"state_prev2_dem_share": 0.4, "prev_total_votes": 900, "prev2_total_votes": 800, "bachelor_rate": 0.2, '
    good += '"less_hs_rate": 0.1, "rural_urban_code": 3, "unemployment_rate": 4, "prev_unemployment_rate": 4'
    nan_poll = good + ', "poll_dem_share": NaN}'
    response = real_client.post(
        "/predict/batch", content=text % (good + "}", nan_poll), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "$.rows[1].poll_dem_share",
            "reason": "NaN and Infinity are not valid JSON numbers: send a finite number",
        }
    ]
    missing = {"rows": [_county(), _county(prev_total_votes=...)]}
    response = real_client.post("/predict/batch", json=missing)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "$.rows[1].prev_total_votes"


def test_the_openapi_schema_documents_which_fields_are_required(real_client):
    schema = real_client.get("/schema/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == list(REAL_INPUT_FIELD_NAMES)
    assert body["required"] == [name for name in REAL_INPUT_FIELD_NAMES if name != "poll_dem_share"]
    assert body["properties"]["poll_dem_share"]["type"] == ["number", "null"]
    votes = REAL_MODE.input_fields[REAL_INPUT_FIELD_NAMES.index("prev_total_votes")]
    assert body["properties"]["prev_total_votes"] == {
        "type": "integer",
        "description": "Votes cast in the county at the previous election: an integer > 0 and <= 20,000,000",
        "exclusiveMinimum": 0,
        "maximum": votes.maximum,
    }
    assert "county" in schema["paths"]["/predict"]["post"]["summary"]


def test_real_mode_has_no_drift_report_of_its_own(real_client, real_settings):
    write_drift(real_settings.reports_dir, drift=True)  # the synthetic pipeline's report must not leak in
    real_client.app.manager.poll_once()
    text = real_client.get("/metrics").text
    assert metric_value(text, "election_drift_detected") == 0.0
    assert metric_value(text, "election_drift_report_available") == 0.0
    assert metric_value(text, "election_model_accuracy") == 0.97
    assert real_client.get("/ready").json()["drift"] is None


def test_an_api_of_one_mode_refuses_a_model_of_the_other(real_settings, real_model, trained, tmp_path):
    publish_real(real_settings.model_store_dir, real_model)
    synthetic_on_real = replace(real_settings, data_mode=ApiSettings.from_env({}).data_mode)
    synthetic_store = tmp_path / "model_store"
    publish(synthetic_store, trained.linear, trained)
    real_on_synthetic = replace(real_settings, model_store_dir=synthetic_store)
    for settings, fix in (
        (synthetic_on_real, "ELECTION_API_MODE=real"),
        (real_on_synthetic, "ELECTION_API_MODE=synthetic"),
    ):
        with TestClient(create_app(settings)) as client:
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert fix in ready.json()["last_error"]["error"]
            assert client.post("/predict", json=_county()).status_code == 503
            assert metric_value(client.get("/metrics").text, "election_model_reload_failures_total") == 1.0


def test_the_documented_examples_are_realistic_rows(settings, champion, real_client):
    """The request example the docs page shows (and "Try it out" sends) of each mode is accepted, and answered with
    a real probability, not the certainty of a degenerate row."""
    from election_api_tests.conftest import make_client

    with make_client(settings) as synthetic_client:
        for client in (synthetic_client, real_client):
            schema = client.get("/schema/openapi.json").json()
            for path in ("/predict", "/predict/batch"):
                body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                response = client.post(path, json=body["example"])
                assert response.status_code == 200, response.text
                answer = response.json()
                prediction = answer["predictions"][0] if path == "/predict/batch" else answer
                assert 0.5 <= prediction["confidence"] < 0.99, prediction
