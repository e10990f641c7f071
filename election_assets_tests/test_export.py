"""Compiled (serving) models reproduce their scikit-learn / XGBoost estimators exactly, explanations included."""

import numpy as np
import pytest
from xgboost import DMatrix

from election_assets.core.compiled_model import load_compiled_model, save_compiled_model
from election_assets.core.features import engineer_features
from election_assets.core.schema import CANDIDATE_A, INPUT_FIELD_NAMES, LABEL
from election_assets.core.synthetic import generate_regions
from election_assets.modelling.candidates import CANDIDATES
from election_assets.modelling.export import compile_estimator


@pytest.fixture(scope="module")
def data():
    frame = generate_regions(3_000, seed=5)
    x = engineer_features(frame[list(INPUT_FIELD_NAMES)].to_numpy(np.float64))
    return x, (frame[LABEL] == CANDIDATE_A).to_numpy().astype(int)


@pytest.mark.parametrize("spec", CANDIDATES, ids=lambda spec: spec.name)
def test_compiled_model_reproduces_the_estimator(spec, data, tmp_path):
    x, y = data
    params = {name: values[0] for name, values in spec.search_space.items()}
    estimator = spec.build(0).set_params(**params).fit(x[:2_000], y[:2_000])
    path = tmp_path / "model.npz"
    save_compiled_model(compile_estimator(estimator), path)
    compiled = load_compiled_model(path)
    held_out = x[2_000:]
    np.testing.assert_allclose(compiled.predict_proba_a(held_out), estimator.predict_proba(held_out)[:, 1], atol=1e-6)

    explanation = compiled.explain(held_out[:50])
    total = explanation.bias + explanation.contributions.sum(axis=1)
    output = 1 / (1 + np.exp(-total)) if explanation.space == "logit" else total
    np.testing.assert_allclose(output, compiled.predict_proba_a(held_out[:50]), atol=1e-9)


def test_tree_explanations_match_xgboost_pred_contribs(data):
    x, y = data
    spec = next(s for s in CANDIDATES if s.name == "xgboost")
    estimator = spec.build(0).set_params(max_depth=4, n_estimators=50).fit(x, y)
    explanation = compile_estimator(estimator).explain(x[:20])
    reference = estimator.get_booster().predict(DMatrix(x[:20]), pred_contribs=True, approx_contribs=True)
    np.testing.assert_allclose(explanation.contributions, reference[:, :-1], atol=1e-5)
    np.testing.assert_allclose(explanation.bias, reference[:, -1], atol=1e-5)


def test_model_file_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, kind=np.array("linear"), mean=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_compiled_model(path)
