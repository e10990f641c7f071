"""Compile trained scikit-learn / XGBoost estimators into the NumPy serving format of ``core.compiled_model``.

Runs at training time only (it needs scikit-learn and XGBoost); the API loads the result without either.
``election_assets_tests`` proves that each compiled model reproduces its estimator's probabilities.
"""

import json
from dataclasses import fields

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from election_assets.core.compiled_model import CompiledModel, LinearModel, SwingModel, TreeEnsemble
from election_assets.core.real_features import REAL_FEATURE_NAMES
from election_assets.real.forecaster import NoRelativeSwing, SwingForecaster


def _positive_column(classes: np.ndarray) -> int:
    matches = np.flatnonzero(classes == 1)
    if len(matches) != 1:
        raise ValueError(f"estimator was not trained on 0/1 labels (classes {classes!r})")
    return int(matches[0])


def _compile_logistic(pipeline: Pipeline) -> LinearModel:
    scaler, logistic = pipeline.steps[0][1], pipeline.steps[-1][1]
    if not (isinstance(scaler, StandardScaler) and isinstance(logistic, LogisticRegression)):
        raise TypeError("expected a Pipeline(StandardScaler, LogisticRegression)")
    sign = 1.0 if _positive_column(logistic.classes_) == 1 else -1.0
    return LinearModel(
        mean=scaler.mean_.astype(np.float64),
        scale=scaler.scale_.astype(np.float64),
        coef=sign * logistic.coef_[0].astype(np.float64),
        intercept=float(sign * logistic.intercept_[0]),
    )


def _stack_trees(trees: list[dict[str, np.ndarray]], n_features: int, **ensemble) -> TreeEnsemble:
    """Concatenate per-tree node arrays into one flat ensemble with global node indices."""
    offsets = np.cumsum([0] + [len(t["value"]) for t in trees[:-1]])
    columns = {key: [] for key in ("feature", "threshold", "left", "right", "value")}
    for offset, tree in zip(offsets, trees, strict=True):
        own = np.arange(len(tree["value"]))
        leaf = tree["left"] < 0
        columns["left"].append(np.where(leaf, own, tree["left"]) + offset)
        columns["right"].append(np.where(leaf, own, tree["right"]) + offset)
        columns["feature"].append(np.where(leaf, 0, tree["feature"]))
        columns["threshold"].append(np.where(leaf, 0.0, tree["threshold"]))
        columns["value"].append(tree["value"])
    flat = {key: np.concatenate(parts) for key, parts in columns.items()}
    return TreeEnsemble(
        feature=flat["feature"].astype(np.int32),
        threshold=flat["threshold"].astype(np.float64),
        left=flat["left"].astype(np.int32),
        right=flat["right"].astype(np.int32),
        value=flat["value"].astype(np.float64),
        roots=offsets.astype(np.int32),
        max_depth=max(int(t["depth"]) for t in trees),
        n_features=n_features,
        **ensemble,
    )


def _compile_random_forest(forest: RandomForestClassifier) -> TreeEnsemble:
    positive = _positive_column(forest.classes_)
    trees = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        class_weights = tree.value[:, 0, :]
        trees.append(
            {
                "left": tree.children_left,
                "right": tree.children_right,
                "feature": tree.feature,
                # scikit-learn goes left when x <= t; the next float up turns that into x < t'.
                "threshold": np.nextafter(tree.threshold, np.inf),
                "value": class_weights[:, positive] / class_weights.sum(axis=1),
                "depth": tree.max_depth,
            }
        )
    return _stack_trees(trees, forest.n_features_in_, aggregation="mean_probability")


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier for c in (left[n], right[n]) if c >= 0]
        if not frontier:
            return depth
        depth += 1


def _node_means(left: np.ndarray, right: np.ndarray, leaf_value: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Cover-weighted mean leaf value under each node (XGBoost's ``node_mean_values`` for Saabas contributions)."""
    means = leaf_value.astype(np.float64).copy()
    # Children always have larger ids than their parent in XGBoost trees, so a reverse sweep is bottom-up.
    for node in range(len(left) - 1, -1, -1):
        if left[node] >= 0:
            a, b = left[node], right[node]
            means[node] = (means[a] * cover[a] + means[b] * cover[b]) / (cover[a] + cover[b])
    return means


# The link from XGBoost's base_score to the margin the trees add to, per supported objective.
_BASE_MARGIN = {
    "binary:logistic": lambda base_score: float(np.log(base_score / (1.0 - base_score))),
    "reg:squarederror": float,
}


def _compile_xgboost(estimator: XGBClassifier | XGBRegressor) -> TreeEnsemble:
    if isinstance(estimator, XGBClassifier):
        _positive_column(estimator.classes_)
    model = json.loads(estimator.get_booster().save_raw("json"))["learner"]
    objective = model["objective"]["name"]
    if objective not in _BASE_MARGIN:
        raise ValueError(f"unsupported XGBoost objective {objective!r}")
    base_score = float(json.loads(model["learner_model_param"]["base_score"].replace("E", "e"))[0])
    trees = []
    for tree in model["gradient_booster"]["model"]["trees"]:
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
        trees.append(
            {
                "left": left,
                "right": right,
                "feature": np.asarray(tree["split_indices"], dtype=np.int64),
                "threshold": conditions,
                # Leaves keep their weight in split_conditions; inner nodes get the mean of their leaves.
                "value": _node_means(left, right, conditions, np.asarray(tree["sum_hessian"], dtype=np.float64)),
                "depth": _depth(left, right),
            }
        )
    return _stack_trees(
        trees,
        int(model["learner_model_param"]["num_feature"]),
        aggregation="logit_sum",
        base_margin=_BASE_MARGIN[objective](base_score),
    )


def _no_trees(n_features: int) -> TreeEnsemble:
    nodes = np.zeros(0, dtype=np.int32)
    return TreeEnsemble(
        feature=nodes,
        threshold=np.zeros(0),
        left=nodes,
        right=nodes,
        value=np.zeros(0),
        roots=nodes,
        max_depth=0,
        n_features=n_features,
        aggregation="logit_sum",
    )


def compile_swing_model(relative_swing: object, sigma_polled: float, sigma_unpolled: float) -> SwingModel:
    """Real mode's serving form of a forecaster's relative swing (``forecaster.RelativeSwing``: XGBoost trees, a
    standardised ridge regression, or none), reading the real features, and the two model columns after them
    (polled, state swing) that set the spread and the swing added to the previous share."""
    n_real = len(REAL_FEATURE_NAMES)
    center, coef, intercept = np.zeros(n_real), np.zeros(n_real), 0.0
    if isinstance(relative_swing, XGBRegressor):
        trees = _compile_xgboost(relative_swing)
    elif isinstance(relative_swing, Pipeline):
        scaler, ridge = relative_swing.named_steps["standardscaler"], relative_swing.named_steps["ridge"]
        trees = _no_trees(n_real)
        center, coef, intercept = scaler.mean_, ridge.coef_ / scaler.scale_, float(ridge.intercept_)
    elif isinstance(relative_swing, NoRelativeSwing):
        trees = _no_trees(n_real)
    else:
        raise TypeError(f"no serving form for a relative swing of type {type(relative_swing).__name__}")
    arrays = {spec.name: getattr(trees, spec.name) for spec in fields(trees)}
    return SwingModel(
        **(arrays | {"n_features": n_real + 2}),
        sigma_polled=sigma_polled,
        sigma_unpolled=sigma_unpolled,
        linear_center=np.asarray(center, dtype=np.float64),
        linear_coef=np.asarray(coef, dtype=np.float64),
        linear_intercept=intercept,
    )


def compile_forecaster(forecaster: SwingForecaster) -> SwingModel:
    """A fitted real-mode forecaster as ``real_champion_model`` publishes it: its relative swing with the spreads of
    polled and unpolled states for a forecast made the day before the election."""
    return compile_swing_model(
        forecaster.relative_swing, forecaster.polled_noise.total, forecaster.unpolled_noise.total
    )


def compile_estimator(estimator: object) -> CompiledModel:
    if isinstance(estimator, Pipeline):
        return _compile_logistic(estimator)
    if isinstance(estimator, RandomForestClassifier):
        return _compile_random_forest(estimator)
    if isinstance(estimator, XGBClassifier):
        return _compile_xgboost(estimator)
    raise TypeError(f"no compiler for {type(estimator).__name__}")
