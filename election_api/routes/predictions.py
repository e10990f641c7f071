"""Predictions: ``POST /predict`` (one row) and ``POST /predict/batch`` (many rows, one model for all of them)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import msgspec
import numpy as np
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from election_api.capacity import LARGE_BATCH_BYTES
from election_api.codec import json_body
from election_api.errors import ApiError, FieldError
from election_api.openapi import batch_schema, error_responses, operation_with_body, row_schema
from election_api.schemas import BatchPrediction, ExplanationOut, Prediction, Probabilities, TopFeature
from election_api.serving import ServedModel
from election_api.settings import ApiSettings
from election_api.state import ApiState
from election_assets.core.data_modes import DataMode
from election_assets.core.schema import LABELS

if TYPE_CHECKING:
    TopParam = int | None  # at run time, the bounded parameter of the app's mode (``_top_param``)

# Batches at least this large are scored in a worker thread so the event loop keeps serving small requests.
THREAD_OFFLOAD_ROWS = 2_000
# Rows scored at once (see ``_score``).
SCORE_BLOCK_ROWS = 1_000
_CANDIDATE_A, _CANDIDATE_B = LABELS
_PREDICTION_ERRORS = error_responses(400, 413, 415, 422, 503)
_ENCODER = msgspec.json.Encoder()

ExplainParam = Annotated[bool, Parameter(description="Add the top contributing features of each prediction")]


def _top_param(mode: DataMode) -> object:
    # The bound depends on the mode's model columns: the handlers resolve the name through signature_namespace.
    return Annotated[
        int | None,
        Parameter(
            ge=1,
            le=len(mode.model_columns),
            description="How many features ?explain=true lists (default ELECTION_API_EXPLAIN_TOP_N, 5)",
        ),
    ]


def render(served: ServedModel, features: np.ndarray, p_a: np.ndarray, explain: bool, top_n: int) -> list[Prediction]:
    """The answers for the rows of ``features`` whose P(Candidate_A) is ``p_a``."""
    version = served.version
    columns = served.mode.model_columns
    confidence = np.maximum(p_a, 1.0 - p_a)
    predictions = [
        Prediction(_CANDIDATE_A if a >= 0.5 else _CANDIDATE_B, c, Probabilities(a, 1.0 - a), version)
        for a, c in zip(p_a.tolist(), confidence.tolist(), strict=True)
    ]
    if explain:
        explanation = served.model.explain(features)
        contributions = explanation.contributions
        k = min(top_n, contributions.shape[1])
        order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
        bias = explanation.bias.tolist()
        for i, prediction in enumerate(predictions):
            prediction.explanation = ExplanationOut(
                explanation.space,
                bias[i],
                [TopFeature(columns[j], float(features[i, j]), float(contributions[i, j])) for j in order[i].tolist()],
            )
    return predictions


def _score_block(served: ServedModel, inputs: np.ndarray, explain: bool, top_n: int, first_row: int = 0):
    features, p_a = served.predict(inputs)
    if not np.isfinite(p_a).all():  # cannot happen for in-range inputs; refuse rather than answer null
        bad = (np.flatnonzero(~np.isfinite(p_a))[:10] + first_row).tolist()
        raise ApiError(422, "the model could not score these rows", [FieldError(f"$.rows{bad}", "non-finite output")])
    return p_a, render(served, features, p_a, explain, top_n)


def _score(served: ServedModel, inputs: np.ndarray, explain: bool, top_n: int):
    """P(Candidate_A) and the answers of every row, scored in blocks of ``SCORE_BLOCK_ROWS`` rows: a tree
    ensemble's leaf matrix is rows x trees (24 MB for 10,000 rows and 300 trees, and as much again for its leaf
    values), so blocks bound the scoring memory of any batch. Rows are independent: blocks change no answer."""
    if len(inputs) <= SCORE_BLOCK_ROWS:
        return _score_block(served, inputs, explain, top_n)
    p_parts: list[np.ndarray] = []
    predictions: list[Prediction] = []
    for start in range(0, len(inputs), SCORE_BLOCK_ROWS):
        p_a, block = _score_block(served, inputs[start : start + SCORE_BLOCK_ROWS], explain, top_n, start)
        p_parts.append(p_a)
        predictions.extend(block)
    return np.concatenate(p_parts), predictions


async def predict(
    request: Request, api: NamedDependency[ApiState], explain: ExplainParam = False, top: TopParam = None
) -> Prediction:
    served = api.manager.serving()
    inputs = api.codec.decode_single(await json_body(request))
    _, (prediction,) = _score(served, inputs, explain, top or api.settings.explain_top_n)
    api.metrics.confidence.observe(prediction.confidence)
    return prediction


def _encoded_batch(served: ServedModel, inputs: np.ndarray, explain: bool, top_n: int) -> tuple[np.ndarray, bytes]:
    p_a, predictions = _score(served, inputs, explain, top_n)
    return p_a, _ENCODER.encode(BatchPrediction(predictions, served.version, len(predictions)))


async def predict_batch(
    request: Request, api: NamedDependency[ApiState], explain: ExplainParam = False, top: TopParam = None
) -> Response[BatchPrediction]:
    served = api.manager.serving()
    settings = api.settings
    top_n = top or settings.explain_top_n
    # A large body is read, scored and encoded inside a batch slot (see ``capacity``): the answer is encoded here,
    # not after the handler returns, so its structs are freed before the slot is.
    async with api.batch_slots.slot(request):
        body = await json_body(request)
        inputs = api.codec.decode_batch(body, settings.max_batch_rows, settings.max_explain_rows if explain else None)
        if len(inputs) >= THREAD_OFFLOAD_ROWS:
            p_a, encoded = await asyncio.to_thread(_encoded_batch, served, inputs, explain, top_n)
        else:
            p_a, encoded = _encoded_batch(served, inputs, explain, top_n)
    api.metrics.confidence.observe_many(np.maximum(p_a, 1.0 - p_a))
    return Response(encoded, media_type="application/json")


def prediction_routes(settings: ApiSettings) -> list[HTTPRouteHandler]:
    """The two prediction routes, documented for the app's data mode (its request body, its ``top`` bound)."""
    mode = settings.data_mode
    row = row_schema(mode)
    namespace = {"TopParam": _top_param(mode)}
    return [
        post(
            "/predict",
            status_code=200,
            summary=f"Predict the winner of one {mode.unit}",
            operation_class=operation_with_body(row, f"One {mode.unit}"),
            signature_namespace=namespace,
            responses=_PREDICTION_ERRORS,
        )(predict),
        post(
            "/predict/batch",
            status_code=200,
            summary=f"Predict many {mode.unit} rows in one request",
            description=(
                f'Body {{"rows": [{mode.unit}, ...]}} with 1 to {settings.max_batch_rows} rows '
                f"(ELECTION_API_MAX_BATCH_ROWS), at most {settings.max_explain_rows} with explain=true "
                "(ELECTION_API_MAX_EXPLAIN_ROWS); answer "
                '{"predictions": [...in request order...], "model_version": ..., "count": n}. '
                "Every row is scored by the same model. "
                f"At most {settings.max_concurrent_batches} batches larger than {LARGE_BATCH_BYTES // 1024} KiB "
                "are worked on at once (ELECTION_API_MAX_CONCURRENT_BATCHES); others wait up to "
                f"{settings.batch_wait_seconds:g} s (ELECTION_API_BATCH_WAIT_SECONDS), then get a 503 with "
                "Retry-After."
            ),
            operation_class=operation_with_body(batch_schema(row, settings.max_batch_rows), "Rows to score"),
            signature_namespace=namespace,
            responses=_PREDICTION_ERRORS,
        )(predict_batch),
    ]
