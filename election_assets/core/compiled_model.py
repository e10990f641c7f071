"""The champion's serving format: plain NumPy arrays, evaluated without scikit-learn or XGBoost.

Training exports every candidate (see ``election_assets.defs.training.export``) into one of two forms:

- ``LinearModel``: standardisation followed by a logistic regression;
- ``TreeEnsemble``: a flat array of tree nodes, either averaged probabilities (random forest) or summed
  logits (gradient boosting).

The arrays are saved with ``numpy.savez`` and loaded with ``allow_pickle=False``, so loading a model can never
execute code, and the API needs neither scikit-learn nor XGBoost (smaller image, sub-second cold start).
Both forms also explain a prediction: exact linear terms, or Saabas path attributions for trees (what
XGBoost's ``pred_contribs`` with ``approx_contribs=True`` computes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

ContributionSpace = Literal["logit", "probability"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Explanation:
    """Additive attribution: ``bias + contributions.sum(axis=1)`` equals the model output in ``space``."""

    bias: np.ndarray
    contributions: np.ndarray
    space: ContributionSpace


@dataclass(frozen=True, eq=False)
class LinearModel:
    kind: ClassVar[str] = "linear"
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @property
    def n_features(self) -> int:
        return len(self.coef)

    def _terms(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale * self.coef

    def predict_proba_a(self, features: np.ndarray) -> np.ndarray:
        return _sigmoid(self._terms(features).sum(axis=1) + self.intercept)

    def explain(self, features: np.ndarray) -> Explanation:
        terms = self._terms(features)
        return Explanation(np.full(len(features), self.intercept), terms, "logit")


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """All trees of an ensemble in flat node arrays.

    A row goes to ``left`` when ``x < threshold`` (scikit-learn's ``<=`` thresholds are stored as the next float
    up). Leaves point to themselves, so walking ``max_depth`` steps from every root lands each row on its leaf
    without per-tree bookkeeping. ``value`` holds each node's mean output, which Saabas attributions need.
    """

    kind: ClassVar[str] = "tree_ensemble"
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    max_depth: int
    n_features: int
    # "mean_probability": random forest; "logit_sum": gradient boosting with ``base_margin`` added.
    aggregation: Literal["mean_probability", "logit_sum"]
    base_margin: float = 0.0

    def _walk(self, features: np.ndarray, record_path: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        # Trees compare in float32 (both scikit-learn and XGBoost do), so the same rounding is applied here.
        x = features.astype(np.float32).astype(np.float64)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        contributions = np.zeros((len(x), self.n_features)) if record_path else None
        for _ in range(self.max_depth):
            split_feature = self.feature[node]
            child = np.where(x[rows, split_feature] < self.threshold[node], self.left[node], self.right[node])
            if contributions is not None:
                gain = self.value[child] - self.value[node]
                np.add.at(contributions, (np.broadcast_to(rows, node.shape), split_feature), gain)
            node = child
        return node, contributions

    def _aggregate(self, per_tree: np.ndarray) -> np.ndarray:
        if self.aggregation == "mean_probability":
            return per_tree.mean(axis=1)
        return per_tree.sum(axis=1) + self.base_margin

    def predict_proba_a(self, features: np.ndarray) -> np.ndarray:
        leaves, _ = self._walk(features)
        output = self._aggregate(self.value[leaves])
        return output if self.aggregation == "mean_probability" else _sigmoid(output)

    def explain(self, features: np.ndarray) -> Explanation:
        _, contributions = self._walk(features, record_path=True)
        root_values = np.broadcast_to(self.value[self.roots], (len(features), len(self.roots)))
        if self.aggregation == "mean_probability":
            return Explanation(root_values.mean(axis=1), contributions / len(self.roots), "probability")
        return Explanation(root_values.sum(axis=1) + self.base_margin, contributions, "logit")


CompiledModel = LinearModel | TreeEnsemble
_KINDS: dict[str, type[LinearModel] | type[TreeEnsemble]] = {cls.kind: cls for cls in (LinearModel, TreeEnsemble)}


def save_compiled_model(model: CompiledModel, path: Path) -> None:
    arrays = {field.name: np.asarray(getattr(model, field.name)) for field in fields(model)}
    with open(path, "wb") as handle:
        np.savez(handle, kind=np.asarray(model.kind), **arrays)


def load_compiled_model(path: Path) -> CompiledModel:
    """Load a model saved by ``save_compiled_model``; refuses pickled objects."""
    with np.load(path, allow_pickle=False) as archive:
        kind = str(archive["kind"])
        cls = _KINDS.get(kind)
        if cls is None:
            raise ValueError(f"unknown model kind {kind!r} in {path}")
        values = {}
        for field in fields(cls):
            if field.name not in archive:
                raise ValueError(f"model file {path} lacks the array {field.name!r} of a {kind} model")
            array = archive[field.name]
            values[field.name] = array.item() if array.ndim == 0 else array
    if cls is TreeEnsemble:
        values["max_depth"] = int(values["max_depth"])
        values["n_features"] = int(values["n_features"])
        values["aggregation"] = str(values["aggregation"])
    return cls(**values)
