"""The response models. Every answer is one of these (or an ``errors.ErrorBody``), and the OpenAPI document
describes them; the request bodies are decoded by ``codec``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import msgspec

from election_assets.core.manifest import ModelManifest


class Probabilities(msgspec.Struct):
    Candidate_A: float
    Candidate_B: float


class TopFeature(msgspec.Struct):
    feature: str
    value: float
    contribution: float


class ExplanationOut(msgspec.Struct):
    """``bias + sum(all contributions)`` equals the model output in ``space`` (logit or probability)."""

    space: str
    bias: float
    top_features: list[TopFeature]


class Prediction(msgspec.Struct, omit_defaults=True):
    predicted_winner: str
    confidence: float
    probabilities: Probabilities
    model_version: str
    explanation: ExplanationOut | None = None


class BatchPrediction(msgspec.Struct):
    predictions: list[Prediction]
    model_version: str
    count: int


@dataclass(frozen=True, kw_only=True)
class ModelInfo(ModelManifest):
    """``GET /model/info``: the loaded model's manifest (the ``ModelManifest`` contract) and when it was loaded."""

    # The manifest's fields as they are, but a NaN score (e.g. ROC AUC on one class) is encoded as null.
    metrics: dict[str, float | None]
    cv_metrics: dict[str, float | None] | None = None
    loaded_at: str

    @classmethod
    def of(cls, manifest: ModelManifest, loaded_at: str) -> ModelInfo:
        return cls(**{spec.name: getattr(manifest, spec.name) for spec in fields(manifest)}, loaded_at=loaded_at)


class LoadFailure(msgspec.Struct):
    """The last failed attempt to load a model version (also counted in election_model_reload_failures_total)."""

    attempted_version: str | None
    error: str
    at: str


class ReadyStatus(msgspec.Struct, omit_defaults=True):
    """``GET /ready`` (200 when a model is loaded, 503 otherwise) and the answer of ``POST /admin/reload``."""

    status: Literal["ready", "not_ready"]
    data_mode: str  # ELECTION_API_MODE: the input contract this server accepts
    model_version: str | None
    loaded_at: str | None
    last_check_at: str | None
    last_error: LoadFailure | None
    model_store: str
    drift: dict[str, Any] | None
    swapped: bool | None = None  # POST /admin/reload only: whether the check swapped models
