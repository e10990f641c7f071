"""The candidate model families, their search spaces, and how a candidate is tuned and scored."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from election_assets.core.compiled_model import CompiledModel

METRIC_NAMES = ("accuracy", "roc_auc", "brier", "log_loss")
LOWER_IS_BETTER = {"accuracy": False, "roc_auc": False, "brier": True, "log_loss": True}
# scikit-learn scorer names; their values are negated for losses.
_CV_SCORERS = {"accuracy": "accuracy", "roc_auc": "roc_auc", "brier": "neg_brier_score", "log_loss": "neg_log_loss"}
# Two cores on the reference machine: each estimator uses both, searches run one fit at a time.
N_THREADS = 2


def classification_metrics(y_true: np.ndarray, p_candidate_a: np.ndarray) -> dict[str, float]:
    p = np.clip(p_candidate_a, 1e-7, 1 - 1e-7)
    return {
        "accuracy": float(accuracy_score(y_true, p >= 0.5)),
        "roc_auc": float(roc_auc_score(y_true, p)),
        "brier": float(brier_score_loss(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
    }


def is_better(metric: str, challenger: float, incumbent: float, min_improvement: float = 0.0) -> bool:
    if LOWER_IS_BETTER[metric]:
        return challenger < incumbent - min_improvement
    return challenger > incumbent + min_improvement


@dataclass(frozen=True)
class CandidateSpec:
    name: str
    title: str
    mlflow_flavor: Literal["sklearn", "xgboost"]
    build: Callable[[int], ClassifierMixin]
    search_space: dict[str, list[Any]]
    # Types skops may load back when MLflow verifies a saved scikit-learn model; we wrote the file ourselves.
    skops_trusted_types: tuple[str, ...] = ()


CANDIDATES: tuple[CandidateSpec, ...] = (
    CandidateSpec(
        name="logistic_regression",
        title="Logistic regression on standardised features",
        mlflow_flavor="sklearn",
        build=lambda seed: Pipeline(
            [("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2_000, random_state=seed))]
        ),
        search_space={"model__C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]},
    ),
    CandidateSpec(
        name="random_forest",
        title="Random forest",
        mlflow_flavor="sklearn",
        # Bagging on 30 % samples keeps each tree cheap; 80 trees are enough for stable probabilities here.
        build=lambda seed: RandomForestClassifier(
            n_estimators=80, max_samples=0.3, n_jobs=N_THREADS, random_state=seed
        ),
        search_space={
            "max_depth": [8, 12, 16],
            "min_samples_leaf": [5, 10, 20, 40],
            "max_features": ["sqrt", 0.2, 0.3],
        },
        skops_trusted_types=("sklearn.tree._tree.Tree",),
    ),
    CandidateSpec(
        name="xgboost",
        title="Gradient-boosted trees (XGBoost)",
        mlflow_flavor="xgboost",
        build=lambda seed: XGBClassifier(
            n_estimators=300, tree_method="hist", n_jobs=N_THREADS, random_state=seed, eval_metric="logloss"
        ),
        search_space={
            "max_depth": [2, 3, 4, 5],
            "learning_rate": [0.03, 0.05, 0.1],
            "min_child_weight": [1, 5, 20],
            "subsample": [0.7, 0.9, 1.0],
            "colsample_bytree": [0.5, 0.8, 1.0],
            "reg_lambda": [1.0, 5.0],
        },
    ),
)


@dataclass
class TrainedCandidate:
    """What a candidate asset hands to the champion: the fitted model, its compiled form and its scores."""

    name: str
    estimator: ClassifierMixin
    compiled: CompiledModel
    best_params: dict[str, Any]
    cv_metrics: dict[str, float]
    test_metrics: dict[str, float]
    search_seconds: float
    mlflow_run_id: str = ""
    mlflow_model_uri: str = ""


@dataclass(frozen=True)
class SearchResult:
    estimator: ClassifierMixin
    best_params: dict[str, Any]
    cv_metrics: dict[str, float]
    seconds: float
    configurations_tried: int


def tune(spec: CandidateSpec, x: np.ndarray, y: np.ndarray, folds: int, iterations: int, seed: int) -> SearchResult:
    """Randomised search with stratified K-fold CV on the training split only; refits the best on all of it."""
    grid_size = int(np.prod([len(values) for values in spec.search_space.values()]))
    search = RandomizedSearchCV(
        spec.build(seed),
        spec.search_space,
        n_iter=min(iterations, grid_size),
        scoring=_CV_SCORERS,
        refit="log_loss",
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        random_state=seed,
        n_jobs=1,
    )
    started = time.perf_counter()
    search.fit(x, y)
    best = search.best_index_
    cv_metrics = {}
    for metric, scorer in _CV_SCORERS.items():
        value = float(search.cv_results_[f"mean_test_{metric}"][best])
        cv_metrics[metric] = -value if scorer.startswith("neg_") else value
    return SearchResult(
        estimator=search.best_estimator_,
        best_params=dict(search.best_params_),
        cv_metrics=cv_metrics,
        seconds=time.perf_counter() - started,
        configurations_tried=len(search.cv_results_["params"]),
    )
