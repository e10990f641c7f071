"""The decoding of request bodies into input matrices, or clear 4xx errors naming the field and the reason.

The request models are generated from the data mode's input fields, so the valid ranges live in one place
(``core.schema`` for synthetic mode, ``core.real_features`` for real mode).
Unknown fields are rejected (``forbid_unknown_fields=True``): a misspelt field name is an error, not a silently
ignored value.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import Request

from election_api.errors import ApiError, FieldError
from election_assets.core.data_modes import SYNTHETIC_MODE, DataMode
from election_assets.core.schema import InputField


def _bound(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def valid_range(spec: InputField) -> str:
    """What a value of the field must be, e.g. "an integer > 0 and <= 50,000,000": for error messages and docs."""
    parts = []
    if spec.minimum is not None:
        parts.append(f"{'>' if spec.exclusive_minimum else '>='} {_bound(spec.minimum)}")
    if spec.maximum is not None:
        parts.append(f"<= {_bound(spec.maximum)}")
    kind = "an integer" if spec.kind == "int" else "a number"
    return f"{kind} {' and '.join(parts)}" if parts else kind


_WHOLE_FLOAT = re.compile(r"(?<=[<>]= )(\d+)\.0\b")
_OUT_OF_RANGE = re.compile(r"^(Expected `(float|int)` [<>]=? |Number out of range)")


def _field(spec: InputField, optional: bool) -> tuple[Any, ...]:
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
    number = Annotated[float, msgspec.Meta(description=spec.description, **constraints)]
    return (spec.name, number | None, None) if optional else (spec.name, number)


def request_types(mode: DataMode) -> tuple[type[msgspec.Struct], type[msgspec.Struct]]:
    """The strict request Structs of a data mode: one row, and ``{"rows": [row, ...]}``."""
    prefix = "" if mode is SYNTHETIC_MODE else mode.name.capitalize()
    row = msgspec.defstruct(
        f"{prefix}PredictRequest",
        [_field(spec, spec.name in mode.optional_fields) for spec in mode.input_fields],
        forbid_unknown_fields=True,
        kw_only=True,
        module=__name__,
    )
    row.__doc__ = f"One {mode.unit}'s input fields ({mode.name} mode). Unknown fields are rejected."
    batch = msgspec.defstruct(
        f"{prefix}BatchRequest", [("rows", list[row])], forbid_unknown_fields=True, module=__name__
    )
    batch.__doc__ = "Up to ``ELECTION_API_MAX_BATCH_ROWS`` rows; at least one."
    return row, batch


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_NAMED_FIELD = re.compile(r"(missing required field|contains unknown field) `(?P<name>[^`]*)`")
_BYTE = re.compile(r"\(byte (?P<offset>\d+)\)")
_LAST_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*$')
_NON_FINITE = re.compile(rb"-?(?:NaN|Infinity|nan|inf)", re.I)


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


def _field_path(batch: bool, index: int, name: str) -> str:
    return f"$.rows[{index}].{name}" if batch else f"$.{name}"


class RequestCodec:
    """Decodes the request bodies of one data mode into ``(n, fields)`` input matrices, or raises ``ApiError``.

    An optional field that is absent (or null) becomes NaN, which the mode's feature function understands.
    """

    def __init__(self, mode: DataMode):
        self.field_names = mode.input_field_names
        self._ranges = {spec.name: valid_range(spec) for spec in mode.input_fields}
        row_type, batch_type = request_types(mode)
        self._single = msgspec.json.Decoder(row_type)
        self._batch = msgspec.json.Decoder(batch_type)
        self._int_columns = [index for index, spec in enumerate(mode.input_fields) if spec.kind == "int"]
        self._int_fields = frozenset(self.field_names[index] for index in self._int_columns)
        # Only a mode with optional fields pays for the column selection (NaN marks an absent optional field).
        self._required_columns = (
            [index for index, name in enumerate(self.field_names) if name not in mode.optional_fields]
            if mode.optional_fields
            else None
        )

    def decode_single(self, body: bytes) -> np.ndarray:
        """The (1, fields) input matrix of one row's body."""
        return self._matrix([self._decode(self._single, body, batch=False)], batch=False)

    def decode_batch(self, body: bytes, max_rows: int, max_explained_rows: int | None = None) -> np.ndarray:
        """The (n, fields) input matrix of a batch body: at most ``max_rows`` rows, and at most
        ``max_explained_rows`` when the request asked for explanations (None: it did not)."""
        rows = self._decode(self._batch, body, batch=True).rows
        if not rows:
            raise ApiError(422, "empty batch", [FieldError("$.rows", "at least one row is required")])
        if len(rows) > max_rows:
            reason = f"{len(rows)} rows exceed the limit of {max_rows} (ELECTION_API_MAX_BATCH_ROWS)"
            raise ApiError(413, "batch too large", [FieldError("$.rows", reason)])
        if max_explained_rows is not None and len(rows) > max_explained_rows:
            raise ApiError(
                413,
                "batch too large to explain",
                [
                    FieldError(
                        "$.rows",
                        f"{len(rows)} rows exceed the limit of {max_explained_rows} rows for explain=true "
                        "(ELECTION_API_MAX_EXPLAIN_ROWS)",
                    ),
                    FieldError(
                        "explain",
                        f"explanations are given for at most {max_explained_rows} rows a request: split the batch, "
                        "or leave out explain",
                    ),
                ],
            )
        return self._matrix(rows, batch=True)

    def _decode(self, decoder: msgspec.json.Decoder, body: bytes, batch: bool) -> Any:
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as error:
            raise self._validation_error(error) from None
        except msgspec.DecodeError as error:
            raise _malformed(body, error, batch) from None

    def _validation_error(self, error: msgspec.ValidationError) -> ApiError:
        match = _AT.match(str(error))
        assert match is not None
        reason, path = match["reason"], match["path"] or "$"
        named = _NAMED_FIELD.search(reason)
        if named:
            path = f"{path}.{named['name']}"
        name = path.rsplit(".", 1)[-1]
        if name in self._int_fields:  # decoded as floats (see _field), reported as ints
            reason = _WHOLE_FLOAT.sub(r"\1", reason.replace("Expected `float`", "Expected `int`", 1), count=1)
        if _OUT_OF_RANGE.match(reason) and name in self._ranges:
            reason = f"{reason}: {name} must be {self._ranges[name]}"
        elif reason == "Number out of range":
            reason = "Number out of range: must be a finite number within the field's range"
        return ApiError(422, "request body failed validation", [FieldError(path, reason)])

    def _overflow(self, rows: list[Any], batch: bool) -> ApiError:
        for index, row in enumerate(rows):
            for name in self.field_names:
                value = getattr(row, name)
                if value is None:  # an optional field left out
                    continue
                try:
                    finite = np.isfinite(float(value))
                except OverflowError:
                    finite = False
                if not finite:
                    return ApiError(
                        422,
                        "request body failed validation",
                        [FieldError(_field_path(batch, index, name), "Number too large")],
                    )
        return ApiError(422, "request body failed validation", [FieldError("$", "Number too large")])

    def _matrix(self, rows: list[Any], batch: bool) -> np.ndarray:
        try:  # None (an optional field left out) becomes NaN
            matrix = np.array([msgspec.structs.astuple(row) for row in rows], dtype=np.float64)
        except OverflowError:
            raise self._overflow(rows, batch) from None
        matrix = matrix.reshape(len(rows), len(self.field_names))
        if self._required_columns is None:
            finite = np.isfinite(matrix).all()
        else:
            finite = np.isfinite(matrix[:, self._required_columns]).all() and not np.isinf(matrix).any()
        if not finite:
            raise self._overflow(rows, batch)
        fractional = matrix[:, self._int_columns] % 1.0 != 0.0
        if fractional.any():
            index, column = (int(i) for i in np.argwhere(fractional)[0])
            name = self.field_names[self._int_columns[column]]
            value = float(matrix[index, self._int_columns[column]])
            reason = f"Expected `int`, got `float` with a fractional part ({value!r}); 52000 and 52000.0 are accepted"
            raise ApiError(422, "request body failed validation", [FieldError(_field_path(batch, index, name), reason)])
        return matrix


async def json_body(request: Request) -> bytes:
    """The body of a request that must be JSON: 415 for another media type, 400 for an empty body."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(
            415,
            "unsupported media type",
            [FieldError("content-type", f"expected application/json, got {content_type or 'no Content-Type'!r}")],
        )
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "malformed JSON", [FieldError("$", "request body is empty")])
    return body
