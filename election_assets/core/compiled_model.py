"""The champion's serving format: plain NumPy arrays, evaluated without scikit-learn or XGBoost.

Training exports every candidate (see ``election_assets.modelling.export``) into one of two forms:

- ``LinearModel``: standardisation followed by a logistic regression;
- ``TreeEnsemble``: a flat array of tree nodes, either averaged probabilities (random forest) or summed
  logits (gradient boosting).

The arrays are saved with ``numpy.savez`` and loaded with ``allow_pickle=False``, so loading a model can never
execute code, and the API needs neither scikit-learn nor XGBoost (smaller image, sub-second cold start).
Both forms also explain a prediction: exact linear terms, or Saabas path attributions for trees (what
XGBoost's ``pred_contribs`` with ``approx_contribs=True`` computes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from election_assets.core.real_features import normal_cdf

ContributionSpace = Literal["logit", "probability", "share"]


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

    Prediction walks all trees of all rows together, one level per step, on preallocated index buffers
    (``_leaves``); explanations keep the straightforward walk that records each step's gain (``_walk``).
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

    @cached_property
    def _plan(self) -> _WalkPlan:
        return _WalkPlan.build(self)

    def _leaves(self, features: np.ndarray) -> np.ndarray:
        """The ``(n, n_trees)`` leaf index of every row in every tree: the same comparisons as ``_walk``."""
        plan = self._plan
        x = np.asarray(features, dtype=np.float32).astype(np.float64)  # trees compare in float32, see _walk
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected an (n, {self.n_features}) feature matrix, got shape {x.shape}")
        if len(x) * len(plan.feature) <= _DECISION_TABLE_CELLS:
            return self._leaves_by_successor(x)
        leaves = np.empty((len(x), len(plan.roots)), dtype=np.intp)
        # Blocks of rows keep the walk's buffers in the CPU cache; results do not depend on the block size.
        block = max(1, _WALK_BLOCK_CELLS // len(plan.roots))
        for start in range(0, len(x), block):
            self._walk_block(x[start : start + block], leaves[start : start + block])
        return leaves

    def _leaves_by_successor(self, x: np.ndarray) -> np.ndarray:
        # Few rows: decide the split of every node once, which gives each row its own successor table; then a
        # level is a single lookup. Node ids are offset by row * n_nodes to index the flat table.
        plan = self._plan
        n, n_nodes = len(x), len(plan.feature)
        went_left = np.less(np.take(x, plan.feature, axis=1), plan.threshold)
        successor = np.where(went_left, plan.left, plan.right)
        node = np.empty((n, len(plan.roots)), dtype=np.intp)
        node[:] = plan.roots
        offsets = np.arange(0, n * n_nodes, n_nodes, dtype=np.intp)[:, None]
        if n > 1:
            successor += offsets
            node += offsets
        successor = successor.ravel()
        spare = np.empty_like(node)
        for _ in range(self.max_depth):
            np.take(successor, node, out=spare, mode="clip")
            node, spare = spare, node
        if n > 1:
            node -= offsets
        return node

    def _walk_block(self, x: np.ndarray, node: np.ndarray) -> None:
        # Many rows: each level gathers the split feature and threshold of each row's current node only.
        plan = self._plan
        node[:] = plan.roots
        flat = x.ravel()
        offsets = np.arange(0, x.size, self.n_features, dtype=np.intp)[:, None]
        index = np.empty_like(node)
        values = np.empty(node.shape)
        thresholds = np.empty(node.shape)
        went_left = np.empty(node.shape, dtype=bool)
        for _ in range(self.max_depth):
            np.take(plan.feature, node, out=index, mode="clip")
            index += offsets
            np.take(flat, index, out=values, mode="clip")
            np.take(plan.threshold, node, out=thresholds, mode="clip")
            np.less(values, thresholds, out=went_left)
            np.left_shift(node, 1, out=index)
            index += went_left
            np.take(plan.children, index, out=node, mode="clip")

    def predict_proba_a(self, features: np.ndarray) -> np.ndarray:
        output = self.margin(features)
        return output if self.aggregation == "mean_probability" else _sigmoid(output)

    def margin(self, features: np.ndarray) -> np.ndarray:
        """The aggregated tree output before any link: gradient boosting's raw score, or the forest's mean."""
        return self._aggregate(np.take(self.value, self._leaves(features)))

    def explain(self, features: np.ndarray) -> Explanation:
        _, contributions = self._walk(features, record_path=True)
        root_values = np.broadcast_to(self.value[self.roots], (len(features), len(self.roots)))
        if self.aggregation == "mean_probability":
            return Explanation(root_values.mean(axis=1), contributions / len(self.roots), "probability")
        return Explanation(root_values.sum(axis=1) + self.base_margin, contributions, "logit")


# Up to this many (row, node) decisions, ``_leaves`` evaluates every node's split once instead of walking.
_DECISION_TABLE_CELLS = 65_536
# Rows x trees per block of the level-by-level walk (128 KB per buffer: stays in the L2 cache).
_WALK_BLOCK_CELLS = 16_384


@dataclass(frozen=True)
class _WalkPlan:
    """A tree ensemble's arrays in the layout ``TreeEnsemble._leaves`` indexes, checked once at load.

    ``children[2 * node + went_left]`` is the next node: ``right`` at even and ``left`` at odd positions. Indices
    are validated here, so the walk may use unchecked (``mode="clip"``) lookups.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    children: np.ndarray
    roots: np.ndarray

    @classmethod
    def build(cls, model: TreeEnsemble) -> _WalkPlan:
        n_nodes = len(model.value)
        arrays = (model.feature, model.threshold, model.left, model.right)
        if any(np.shape(array) != (n_nodes,) for array in arrays) or np.ndim(model.roots) != 1:
            raise ValueError("tree ensemble arrays have inconsistent shapes")
        for name, array, bound in (
            ("left", model.left, n_nodes),
            ("right", model.right, n_nodes),
            ("roots", model.roots, n_nodes),
            ("feature", model.feature, model.n_features),
        ):
            if len(array) and (np.min(array) < 0 or np.max(array) >= bound):
                raise ValueError(f"tree ensemble {name} indices outside [0, {bound})")
        children = np.empty(2 * n_nodes, dtype=np.intp)
        children[0::2] = model.right
        children[1::2] = model.left
        return cls(
            feature=np.ascontiguousarray(model.feature, dtype=np.intp),
            threshold=np.ascontiguousarray(model.threshold, dtype=np.float64),
            left=np.ascontiguousarray(model.left, dtype=np.intp),
            right=np.ascontiguousarray(model.right, dtype=np.intp),
            children=children,
            roots=np.ascontiguousarray(model.roots, dtype=np.intp),
        )


@dataclass(frozen=True, eq=False)
class SwingModel(TreeEnsemble):
    """Real mode (``election_assets.core.real_features``): a county's Democratic two-party share is its previous
    share (feature 0) plus the expected state swing (the last feature) plus the relative swing, and P(Candidate_A) =
    P(share > 1/2) under a Gaussian error whose standard deviation depends on whether the state was polled (the
    feature before last): without polls the national swing is unknown too.

    The relative swing is the sum of the regression trees and the linear terms ``linear_intercept + linear_coef ·
    (x - linear_center)`` over the real features: the trees variant has zero linear terms, the ridge variant no
    trees, and the variant without a relative swing neither (``election_assets.real.forecaster``).
    """

    kind: ClassVar[str] = "swing_share"
    sigma_polled: float = 1.0
    sigma_unpolled: float = 1.0
    linear_center: np.ndarray = field(kw_only=True)
    linear_coef: np.ndarray = field(kw_only=True)
    linear_intercept: float = field(kw_only=True)

    def _linear_terms(self, features: np.ndarray) -> np.ndarray:
        return (features[:, : len(self.linear_coef)] - self.linear_center) * self.linear_coef

    def margin(self, features: np.ndarray) -> np.ndarray:
        """The relative swing: the trees' sum plus the linear terms."""
        features = np.asarray(features, dtype=np.float64)
        margin = super().margin(features) if len(self.roots) else np.full(len(features), self.base_margin)
        # Term by term: a row's sum must not depend on the batch it came in (a row-wise reduction may change its
        # order with the batch's shape), so the API and the batch forecast agree to the last bit.
        for column, (center, coef) in enumerate(zip(self.linear_center, self.linear_coef, strict=True)):
            margin = margin + (features[:, column] - center) * coef
        return margin + self.linear_intercept

    def predict_share(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        return np.clip(features[:, 0] + features[:, -1] + self.margin(features), 0.0, 1.0)

    def predict_proba_a(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        sigma = np.where(features[:, -2] > 0, self.sigma_polled, self.sigma_unpolled)
        return normal_cdf((self.predict_share(features) - 0.5) / sigma)

    def explain(self, features: np.ndarray) -> Explanation:
        """Contributions to the forecast share (before it is clipped to [0, 1])."""
        features = np.asarray(features, dtype=np.float64)
        trees = super().explain(features)
        contributions = trees.contributions.copy()
        contributions[:, : len(self.linear_coef)] += self._linear_terms(features)
        contributions[:, 0] += features[:, 0]
        contributions[:, -1] += features[:, -1]
        return Explanation(trees.bias + self.linear_intercept, contributions, "share")


CompiledModel = LinearModel | TreeEnsemble
_KINDS: dict[str, type[LinearModel] | type[TreeEnsemble]] = {
    cls.kind: cls for cls in (LinearModel, TreeEnsemble, SwingModel)
}


def save_compiled_model(model: CompiledModel, path: Path) -> None:
    arrays = {spec.name: np.asarray(getattr(model, spec.name)) for spec in fields(model)}
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
        for spec in fields(cls):
            if spec.name not in archive:
                raise ValueError(f"model file {path} lacks the array {spec.name!r} of a {kind} model")
            array = archive[spec.name]
            values[spec.name] = array.item() if array.ndim == 0 else array
    if issubclass(cls, TreeEnsemble):
        values["max_depth"] = int(values["max_depth"])
        values["n_features"] = int(values["n_features"])
        values["aggregation"] = str(values["aggregation"])
    return cls(**values)
