"""Request and response models (msgspec Structs) and the decoding of request bodies into clear 4xx errors.

The request model is generated from ``INPUT_FIELDS``, so the valid ranges live in one place (``core.schema``).
Unknown fields are rejected (``forbid_unknown_fields=True``): a misspelt field name is an error, not a silently
ignored value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from election_assets.core.schema import INPUT_FIELD_NAMES, INPUT_FIELDS, LABELS, InputField


def _annotation(spec: InputField) -> Any:
    # JSON has one number type, and JSON Schema's "integer" (what the OpenAPI document says) includes 52000.0: an
    # integer field is decoded as a float, so 52000 and 52000.0 are both accepted, and ``_matrix`` rejects a
    # fractional part. A strictly positive integer is one >= floor(minimum) + 1.
    constraints: dict[str, float] = {}
    if spec.minimum is not None:
        if spec.kind == "int" and spec.exclusive_minimum:
            constraints["ge"] = float(math.floor(spec.minimum) + 1)
        else:
            constraints["gt" if spec.exclusive_minimum else "ge"] = float(spec.minimum)
    if spec.maximum is not None:
        constraints["le"] = float(spec.maximum)
    return Annotated[float, msgspec.Meta(description=spec.description, **constraints)]


PredictRequest = msgspec.defstruct(
    "PredictRequest",
    [(spec.name, _annotation(spec)) for spec in INPUT_FIELDS],
    forbid_unknown_fields=True,
    module=__name__,
)
PredictRequest.__doc__ = "One region's 14 input fields (SPEC section 3). Unknown fields are rejected."


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Up to ``ELECTION_API_MAX_BATCH_ROWS`` regions; at least one."""

    rows: list[PredictRequest]  # type: ignore[valid-type]


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


class ModelInfo(msgspec.Struct):
    """``GET /model/info``: the loaded model's manifest. Fields a manifest lacks are null."""

    version: str
    model_name: str | None
    model_kind: str | None
    trained_at: str | None
    loaded_at: str
    data_mode: str | None
    metrics: dict[str, float | None] | None  # NaN (e.g. ROC AUC on one class) is encoded as null
    cv_metrics: dict[str, float | None] | None
    bayes: dict[str, Any] | None
    feature_names: list[str] | None
    input_schema: list[dict[str, Any]] | None
    labels: dict[str, str] | None
    training_rows: int | None
    holdout_rows: int | None
    training_data_fingerprint: str | None
    hyperparameters: dict[str, Any] | None
    promotion: dict[str, Any] | None
    source_run: dict[str, Any] | None
    library_versions: dict[str, Any] | None


class LoadFailure(msgspec.Struct):
    attempted_version: str | None
    error: str
    at: str


class ReadyStatus(msgspec.Struct):
    """``GET /ready`` (200 when a model is loaded, 503 otherwise) and the answer of ``POST /admin/reload``."""

    status: Literal["ready", "not_ready"]
    model_version: str | None
    loaded_at: str | None
    last_check_at: str | None
    last_error: LoadFailure | None  # the last failed load, also counted in election_model_reload_failures_total
    model_store: str
    drift: dict[str, Any] | None
    swapped: bool | None = None  # POST /admin/reload only: whether the check swapped models


class FieldError(msgspec.Struct):
    field: str
    reason: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    status_code: int
    detail: str
    errors: list[FieldError] = []
    request_id: str | None = None


# -- decoding ----------------------------------------------------------------------------------------------------


@dataclass
class ApiError(Exception):
    """A client or availability error rendered as ``ErrorBody``."""

    status_code: int
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


_INT_COLUMNS = [index for index, spec in enumerate(INPUT_FIELDS) if spec.kind == "int"]
_INT_FIELDS = frozenset(INPUT_FIELD_NAMES[index] for index in _INT_COLUMNS)
_SINGLE_DECODER = msgspec.json.Decoder(PredictRequest)
_BATCH_DECODER = msgspec.json.Decoder(BatchRequest)
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_NAMED_FIELD = re.compile(r"(missing required field|contains unknown field) `(?P<name>[^`]*)`")
_BYTE = re.compile(r"\(byte (?P<offset>\d+)\)")
_LAST_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*$')
_NON_FINITE = re.compile(rb"-?(?:NaN|Infinity|nan|inf)", re.I)


def _validation_error(error: msgspec.ValidationError) -> ApiError:
    match = _AT.match(str(error))
    assert match is not None
    reason, path = match["reason"], match["path"] or "$"
    named = _NAMED_FIELD.search(reason)
    if named:
        path = f"{path}.{named['name']}"
    if path.rsplit(".", 1)[-1] in _INT_FIELDS:  # decoded as floats (see _annotation), reported as the ints they are
        reason = reason.replace("Expected `float`", "Expected `int`", 1)
    if reason == "Number out of range":
        reason = "Number out of range: must be a finite number within the field's range"
    return ApiError(422, "request body failed validation", [FieldError(path, reason)])


def _malformed(body: bytes, error: msgspec.DecodeError, batch: bool) -> ApiError:
    message = str(error)
    located = _BYTE.search(message)
    if located is None:
        return ApiError(400, "malformed JSON", [FieldError("$", message)])
    offset = int(located["offset"])
    if _NON_FINITE.match(body, offset):
        reason = "NaN and Infinity are not valid JSON numbers: send a finite number"
    else:
        reason = message
    prefix = body[:offset].rstrip().rstrip(b"-").rstrip()
    key = _LAST_KEY.search(prefix[-200:] if len(prefix) > 200 else prefix)
    path = "$"
    if key is not None:
        name = key.group(1).decode()
        path = f"$.{name}"
        rows_start = body.find(b'"rows"')
        if batch and name != "rows" and 0 <= rows_start < offset:
            # Rows are flat objects of numbers, so closed objects before the offset count the rows before it.
            path = f"$.rows[{body.count(b'}', rows_start, offset)}].{name}"
    return ApiError(400, "malformed JSON", [FieldError(path, reason)])


def _overflow(rows: list[Any], batch: bool) -> ApiError:
    for index, row in enumerate(rows):
        for name in INPUT_FIELD_NAMES:
            try:
                finite = np.isfinite(float(getattr(row, name)))
            except OverflowError:
                finite = False
            if not finite:
                path = f"$.rows[{index}].{name}" if batch else f"$.{name}"
                return ApiError(422, "request body failed validation", [FieldError(path, "Number too large")])
    return ApiError(422, "request body failed validation", [FieldError("$", "Number too large")])


def _matrix(rows: list[Any], batch: bool) -> np.ndarray:
    try:
        matrix = np.array([msgspec.structs.astuple(row) for row in rows], dtype=np.float64)
    except OverflowError:
        raise _overflow(rows, batch) from None
    if not np.isfinite(matrix).all():
        raise _overflow(rows, batch)
    matrix = matrix.reshape(len(rows), len(INPUT_FIELD_NAMES))
    fractional = matrix[:, _INT_COLUMNS] % 1.0 != 0.0
    if fractional.any():
        index, column = (int(i) for i in np.argwhere(fractional)[0])
        name = INPUT_FIELD_NAMES[_INT_COLUMNS[column]]
        value = float(matrix[index, _INT_COLUMNS[column]])
        path = f"$.rows[{index}].{name}" if batch else f"$.{name}"
        reason = f"Expected `int`, got `float` with a fractional part ({value!r}); 52000 and 52000.0 are accepted"
        raise ApiError(422, "request body failed validation", [FieldError(path, reason)])
    return matrix


def decode_single(body: bytes) -> np.ndarray:
    """The (1, 14) input matrix of a ``PredictRequest`` body, or an ``ApiError``."""
    try:
        row = _SINGLE_DECODER.decode(body)
    except msgspec.ValidationError as error:
        raise _validation_error(error) from None
    except msgspec.DecodeError as error:
        raise _malformed(body, error, batch=False) from None
    return _matrix([row], batch=False)


def decode_batch(body: bytes, max_rows: int) -> np.ndarray:
    try:
        request = _BATCH_DECODER.decode(body)
    except msgspec.ValidationError as error:
        raise _validation_error(error) from None
    except msgspec.DecodeError as error:
        raise _malformed(body, error, batch=True) from None
    rows = request.rows
    if not rows:
        raise ApiError(422, "empty batch", [FieldError("$.rows", "at least one row is required")])
    if len(rows) > max_rows:
        raise ApiError(
            413,
            "batch too large",
            [FieldError("$.rows", f"{len(rows)} rows exceed the limit of {max_rows} (ELECTION_API_MAX_BATCH_ROWS)")],
        )
    return _matrix(rows, batch=True)


def winner_of(p_a: float) -> str:
    # Same rule as the training metrics: Candidate_A when P(A) >= 0.5.
    return LABELS[0] if p_a >= 0.5 else LABELS[1]
