"""The model manifest: what a published model is, written by the pipeline and read by the API, in one typed contract.

``manifest.json`` in every model-store version is a ``ModelManifest`` as JSON. The champion assets build one and
``ModelStore.publish`` completes it with the version id and the files' checksums; ``ModelStore`` reads it back
through ``ModelManifest.from_json``, which checks every field's type, so nothing outside this module reads or writes
a manifest key by string. Standard library only, like the rest of ``core``.
"""

from __future__ import annotations

import json
import platform
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

# 2: typed contract (``trained_at``, noise parts' ``source``); format 1 manifests are refused with a clear error.
MANIFEST_FORMAT = 2
SYNTHETIC = "synthetic"  # trained on the seeded synthetic history, whose Bayes rate is known
EXTERNAL = "external"  # trained on a file-fed history of the synthetic mode's 14 fields
REAL = "real"  # the county forecaster of real mode


class ManifestError(ValueError):
    """A manifest is not valid JSON or does not fit the contract; the message names the field."""


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class SourceRun:
    """The runs that produced the model: the Dagster run, and in synthetic mode its MLflow run and registry version."""

    dagster_run_id: str
    mlflow_run_id: str | None = None
    mlflow_model_uri: str | None = None
    registered_model: str | None = None
    registered_version: str | None = None


@dataclass(frozen=True)
class Promotion:
    """Why the champion gate promoted this model."""

    metric: str
    reason: str


@dataclass(frozen=True)
class BayesGap:
    """Synthetic mode: the held-out rows' exact Bayes-optimal scores and the champion's distance to them."""

    bayes_optimal_accuracy: float
    bayes_brier: float
    accuracy_gap_to_bayes: float
    expected_accuracy_gap_to_bayes: float
    brier_gap_to_bayes: float


@dataclass(frozen=True)
class NoiseParts:
    """Standard deviations of the share error shared by the whole nation, by a state, and by one county."""

    national: float
    state: float
    county: float
    source: str  # how the parts were estimated

    @property
    def total(self) -> float:
        return (self.national**2 + self.state**2 + self.county**2) ** 0.5


@dataclass(frozen=True)
class ReferencePredictions:
    """A fixed sample of rows the model was evaluated on, and the probabilities it gave them when it was trained.

    Checksums prove a file is the one that was written; these prove the model loaded from it is the model that was
    evaluated: ``ModelStore.load`` refuses a version whose model does not reproduce them within ``tolerance``.
    """

    inputs: list[list[float | None]]  # the data mode's input fields; null where an optional field is absent
    p_candidate_a: list[float]
    tolerance: float


@dataclass(frozen=True)
class ModelManifest:
    data_mode: str  # SYNTHETIC, EXTERNAL or REAL: the input contract the model serves
    model_name: str
    model_kind: str  # the compiled model's class (``CompiledModel.kind``)
    trained_at: str  # ISO 8601, UTC
    metrics: dict[str, float]  # held-out (synthetic) or walk-forward backtest (real) scores
    feature_names: list[str]
    input_schema: list[dict[str, Any]]
    labels: dict[str, str]
    hyperparameters: dict[str, Any]
    training_data_fingerprint: str
    training_rows: int
    source_run: SourceRun
    library_versions: dict[str, str]
    reference: ReferencePredictions
    # Synthetic mode.
    holdout_rows: int | None = None
    cv_metrics: dict[str, float] | None = None
    bayes: BayesGap | None = None
    promotion: Promotion | None = None
    # Real mode.
    trained_through: int | None = None  # the last election year the model learned from
    training_years: list[int] | None = None
    forecast_year: int | None = None
    metrics_source: str | None = None  # which backtest the metrics come from
    noise: dict[str, NoiseParts] | None = None  # "polled" and "unpolled" states
    # Completed by ``ModelStore.publish``.
    version: str | None = None
    files: dict[str, FileDigest] = field(default_factory=dict)
    manifest_format: int = MANIFEST_FORMAT

    def published(self, version: str, files: dict[str, FileDigest]) -> ModelManifest:
        return replace(self, version=version, files=files, manifest_format=MANIFEST_FORMAT)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelManifest:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ManifestError(f"not valid JSON: {error}") from None
        if isinstance(data, dict) and data.get("manifest_format") != MANIFEST_FORMAT:
            raise ManifestError(
                f"manifest_format {data.get('manifest_format')!r} is not {MANIFEST_FORMAT}: the model was published "
                "by another version of the pipeline; rematerialize its champion asset"
            )
        return _convert(data, cls, "manifest")


def library_versions(*packages: str) -> dict[str, str]:
    """Python's version and the installed versions of ``packages`` (those not installed are left out)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return versions


# -- reading: a strict conversion of parsed JSON to the dataclasses above ------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner, where)
    if origin is list:
        if not isinstance(value, list):
            raise ManifestError(f"{where} must be a list, not {type(value).__name__}")
        return [_convert(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ManifestError(f"{where} must be an object, not {type(value).__name__}")
        return {key: _convert(item, args[1], f"{where}.{key}") for key, item in value.items()}
    if is_dataclass(hint):
        return _dataclass(value, hint, where)
    if hint is float:
        # JSON writes 1.0 as 1.0, but hand-made or other writers may write 1; NaN (ROC AUC of one class) is a float.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ManifestError(f"{where} must be a number, not {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"{where} must be an integer, not {value!r}")
        return value
    if not isinstance(value, hint):
        raise ManifestError(f"{where} must be a {hint.__name__}, not {value!r}")
    return value


def _dataclass(value: Any, cls: type, where: str) -> Any:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} must be an object, not {type(value).__name__}")
    hints = _hints(cls)
    known = {spec.name: spec for spec in fields(cls)}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ManifestError(f"{where} has unknown field(s) {', '.join(unknown)}")
    values = {}
    for name, spec in known.items():
        if name in value:
            values[name] = _convert(value[name], hints[name], f"{where}.{name}")
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ManifestError(f"{where}.{name} is missing")
    return cls(**values)
