"""Every route answers with its documented shape."""

from __future__ import annotations

import numpy as np
import pytest

from election_api import SERVICE_NAME, __version__
from election_api_tests.conftest import TRAINED_AT, VALID_ROW, rows_from_inputs
from election_assets.core.features import FEATURE_NAMES, engineer_features
from election_assets.core.schema import INPUT_FIELD_NAMES, LABELS

PREDICTION_KEYS = {"predicted_winner", "confidence", "probabilities", "model_version"}


def test_index_names_service_version_and_links(client, champion):
    body = client.get("/").json()
    assert body["name"] == SERVICE_NAME and body["version"] == __version__
    assert body["model_version"] == champion
    for name, link in body["links"].items():
        expected = 405 if name.startswith("predict") else 200  # the predict routes take POST
        assert client.get(link).status_code == expected, link


def test_health_and_ready(client, champion):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["model_version"] == champion and body["last_error"] is None
    assert "swapped" not in body  # only POST /admin/reload says whether it swapped


def test_model_info_is_the_loaded_manifest(client, champion, store_dir):
    import json

    from election_assets.core.model_store import ModelStore

    manifest = ModelStore(store_dir).read_manifest(champion)
    info = client.get("/model/info").json()
    loaded_at = info.pop("loaded_at")
    assert loaded_at == client.get("/ready").json()["loaded_at"]
    assert info == json.loads(manifest.to_json())  # every field of the manifest contract, as published
    assert info["version"] == champion and info["trained_at"] == TRAINED_AT
    assert info["feature_names"] == list(FEATURE_NAMES)
    assert info["data_mode"] == "synthetic"
    assert info["model_name"] == "logistic_regression"


def test_model_info_encodes_a_nan_metric_as_null(store_dir, trained, settings):
    from election_api_tests.conftest import make_client, publish

    publish(store_dir, trained.linear, trained, roc_auc=float("nan"))  # ROC AUC of a one-class holdout
    with make_client(settings) as client:
        response = client.get("/model/info")
        assert response.status_code == 200 and response.json()["metrics"]["roc_auc"] is None
        schema = client.get("/schema/openapi.json").json()
    metrics = schema["components"]["schemas"]["ModelInfo"]["properties"]["metrics"]
    assert {"type": "null"} in metrics["additionalProperties"]["oneOf"]


def test_predict_answers_exactly_the_documented_shape(client, champion, trained):
    response = client.post("/predict", json=VALID_ROW)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PREDICTION_KEYS
    assert body["model_version"] == champion
    expected = float(trained.linear.predict_proba_a(engineer_features(np.array([list(VALID_ROW.values())])))[0])
    assert body["probabilities"]["Candidate_A"] == expected
    assert set(body["probabilities"]) == set(LABELS)
    assert abs(body["probabilities"]["Candidate_A"] + body["probabilities"]["Candidate_B"] - 1.0) < 1e-12
    assert body["predicted_winner"] == (LABELS[0] if expected >= 0.5 else LABELS[1])
    assert body["confidence"] == max(body["probabilities"].values())


def test_explain_adds_top_features(client):
    body = client.post("/predict?explain=true", json=VALID_ROW).json()
    assert set(body) == PREDICTION_KEYS | {"explanation"}
    explanation = body["explanation"]
    assert explanation["space"] == "logit"
    top = explanation["top_features"]
    assert len(top) == 5
    magnitudes = [abs(item["contribution"]) for item in top]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(set(item) == {"feature", "value", "contribution"} and item["feature"] in FEATURE_NAMES for item in top)
    # For a linear model the logit is bias + all contributions: check the top ones are the real largest terms.
    assert client.post("/predict?explain=true&top=12", json=VALID_ROW).json()["explanation"]["top_features"][:5] == top
    assert len(client.post("/predict?explain=true&top=1", json=VALID_ROW).json()["explanation"]["top_features"]) == 1


def test_explanations_name_the_right_features_with_their_exact_terms(client, trained):
    """Every listed feature carries its own column's value and, for the logistic regression, exactly its own term
    coef * (x - mean) / scale: a contribution filed under the wrong name fails here."""
    features = engineer_features(np.array([list(VALID_ROW.values())]))[0]
    model = trained.linear
    body = client.post(f"/predict?explain=true&top={len(FEATURE_NAMES)}", json=VALID_ROW).json()
    listed = body["explanation"]["top_features"]
    assert sorted(item["feature"] for item in listed) == sorted(FEATURE_NAMES)
    for item in listed:
        j = FEATURE_NAMES.index(item["feature"])
        assert item["value"] == features[j], item
        assert item["contribution"] == pytest.approx(model.coef[j] * (features[j] - model.mean[j]) / model.scale[j])
    assert body["explanation"]["bias"] == model.intercept


def test_explanation_is_additive_for_trees(store_dir, trained, settings):
    from election_api_tests.conftest import make_client, publish

    publish(store_dir, trained.trees, trained, name="xgboost")
    with make_client(settings) as client:
        body = client.post(f"/predict?explain=true&top={len(FEATURE_NAMES)}", json=VALID_ROW).json()
    explanation = body["explanation"]
    features = engineer_features(np.array([list(VALID_ROW.values())]))[0]
    for item in explanation["top_features"]:
        assert item["value"] == features[FEATURE_NAMES.index(item["feature"])], item
    logit = explanation["bias"] + sum(item["contribution"] for item in explanation["top_features"])
    assert abs(1.0 / (1.0 + np.exp(-logit)) - body["probabilities"]["Candidate_A"]) < 1e-9


def test_batch_equals_single_predictions(client, trained):
    rows = rows_from_inputs(trained.test_inputs[:60])
    batch = client.post("/predict/batch", json={"rows": rows})
    assert batch.status_code == 200
    body = batch.json()
    assert set(body) == {"predictions", "model_version", "count"} and body["count"] == 60
    singles = [client.post("/predict", json=row).json() for row in rows]
    assert body["predictions"] == singles
    explained = client.post("/predict/batch?explain=true", json={"rows": rows[:5]}).json()["predictions"]
    assert explained == [client.post("/predict?explain=true", json=row).json() for row in rows[:5]]


def test_large_batch_is_scored_off_the_event_loop_with_the_same_answers(client, trained):
    from election_api.routes.predictions import THREAD_OFFLOAD_ROWS

    inputs = np.tile(trained.test_inputs, (THREAD_OFFLOAD_ROWS // len(trained.test_inputs) + 1, 1))
    body = client.post("/predict/batch", json={"rows": rows_from_inputs(inputs)}).json()
    expected = trained.linear.predict_proba_a(engineer_features(inputs))
    assert [p["probabilities"]["Candidate_A"] for p in body["predictions"]] == expected.tolist()


def test_request_id_is_echoed_or_generated(client):
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    error = client.post("/predict", json={}, headers={"X-Request-ID": "req-9"})
    assert error.json()["request_id"] == "req-9"


def test_openapi_schema_and_docs(client):
    schema = client.get("/schema/openapi.json").json()
    for path in ("/", "/health", "/ready", "/predict", "/predict/batch", "/metrics", "/model/info"):
        assert path in schema["paths"], path
    body_schema = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == list(INPUT_FIELD_NAMES)
    assert body_schema["additionalProperties"] is False
    assert body_schema["properties"]["education_rate"]["maximum"] == 1.0
    assert body_schema["properties"]["population"]["exclusiveMinimum"] == 0
    batch = schema["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["properties"]["rows"]["maxItems"] == 10_000
    page = client.get("/schema/swagger")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert not any(path.startswith("/schema/assets") for path in schema["paths"])


def test_no_redoc_page_whose_script_needs_a_cdn(client):
    """ReDoc's page loads its script from a CDN, blank without internet: it is not served, and / does not link it."""
    assert client.get("/schema/redoc").status_code == 404
    index = client.get("/")
    assert "redoc" not in index.text.lower()
    assert index.json()["links"]["docs"] == "/schema/swagger"


def test_the_swagger_page_is_served_without_a_cdn(client):
    """Every script and style the Swagger page loads comes from the API itself (air-gapped clusters, CI)."""
    import re

    page = client.get("/schema/swagger").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert len(assets) == 3 and not [url for url in assets if "://" in url], assets
    for url in assets:
        media_type = "text/css" if url.endswith(".css") else "text/javascript"
        response = client.get(url)
        assert response.status_code == 200 and len(response.content) > 100_000, url
        assert response.headers["content-type"].startswith(media_type), (url, response.headers["content-type"])


def test_unknown_route_and_method(client):
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["status_code"] == 404
    assert missing.json()["errors"] == [{"field": "path", "reason": "no route '/nope'; the routes are listed at /"}]
    wrong_method = client.get("/predict")
    assert wrong_method.status_code == 405 and wrong_method.json()["status_code"] == 405
    assert wrong_method.json()["errors"][0]["field"] == "method"


def test_admin_reload_is_absent_without_a_token(client):
    assert client.post("/admin/reload").status_code == 404


def test_admin_reload_requires_the_bearer_token(settings, champion, store_dir, trained):
    from election_api_tests.conftest import make_client, publish

    with make_client(settings, admin_token="s3cret") as client:
        assert client.post("/admin/reload").status_code == 401
        assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
        new_version = publish(store_dir, trained.trees, trained)
        response = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
        assert response.status_code == 200
        assert response.json()["swapped"] is True and response.json()["model_version"] == new_version
        assert client.post("/predict", json=VALID_ROW).json()["model_version"] == new_version


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_only_the_admin_route_is_an_operation_and_it_needs_the_token(settings, champion, store_dir):
    from election_api_tests.conftest import make_client

    with make_client(settings, admin_token="s3cret") as client:
        schema = client.get("/schema/openapi.json").json()
        paths = schema["paths"]
        non_get = {(path, method.upper()) for path, item in paths.items() for method in item if method != "get"}
        # The predict routes compute an answer from the body; the admin reload is the one operation.
        assert non_get == {("/predict", "POST"), ("/predict/batch", "POST"), ("/admin/reload", "POST")}
        assert schema["paths"]["/admin/reload"]["post"]["security"] == [{"AdminToken": []}]
        assert schema["components"]["securitySchemes"]["AdminToken"] == {
            "type": "http",
            "scheme": "bearer",
            "description": "POST /admin/reload only; the token is ELECTION_API_ADMIN_TOKEN",
        }
        before = _tree(store_dir)
        for path in ("/", "/health", "/ready", "/model/info", "/metrics"):
            assert client.get(path).status_code == 200
        assert client.post("/predict?explain=true", json=VALID_ROW).status_code == 200
        assert client.post("/predict/batch", json={"rows": [VALID_ROW] * 3}).status_code == 200
        assert client.post("/admin/reload", headers={"Authorization": "Bearer s3cre"}).status_code == 401
        assert client.post("/admin/reload", headers={"Authorization": "s3cret"}).status_code == 401
        assert client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert _tree(store_dir) == before  # the API never writes to the model store
