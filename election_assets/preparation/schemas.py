"""Pandera schemas of synthetic mode's tables (raw, cleaned, features, predictions).

Schemas are derived from ``core.schema.INPUT_FIELDS`` and ``core.features.FEATURE_NAMES``, so the data contract,
the API's request model and these checks cannot disagree about a range. ``defs/checks.py`` runs each as a blocking
asset check.
"""

import numpy as np
import pandas as pd
import pandera.pandas as pa

from election_assets.core.features import FEATURE_NAMES
from election_assets.core.schema import INPUT_FIELDS, LABEL, LABELS, REGION_ID, InputField
from election_assets.core.synthetic import TRUE_PROBABILITY

POLL_SUM_TOLERANCE = 0.02
SPLITS = ("train", "test")
TARGET = "target"
SPLIT = "split"


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def _range_check(field: InputField) -> pa.Check:
    low = "" if field.minimum is None else f"{'>' if field.exclusive_minimum else '>='} {field.minimum:g}"
    high = "" if field.maximum is None else f"<= {field.maximum:g}"

    def within(series: pd.Series) -> pd.Series:
        values = _numeric(series)
        ok = pd.Series(True, index=series.index)
        if field.minimum is not None:
            ok &= values > field.minimum if field.exclusive_minimum else values >= field.minimum
        if field.maximum is not None:
            ok &= values <= field.maximum
        # Gaps are the nullable flag's business and non-numbers the ``numeric`` check's: each is reported once.
        return ok | values.isna()

    return pa.Check(within, name=f"range({' and '.join(p for p in (low, high) if p)})")


_IS_NUMERIC = pa.Check(lambda s: _numeric(s).notna() | s.isna(), name="numeric")
_IS_WHOLE = pa.Check(lambda s: (_numeric(s) % 1 == 0) | _numeric(s).isna(), name="whole_number")


def _input_columns(nullable: bool, strict_types: bool) -> dict[str, pa.Column]:
    columns = {}
    for field in INPUT_FIELDS:
        checks = [_range_check(field)]
        if field.kind == "int":
            checks.append(_IS_WHOLE)
        if strict_types:
            dtype = "int64" if field.kind == "int" else "float64"
            columns[field.name] = pa.Column(dtype, checks=checks, nullable=nullable)
        else:
            columns[field.name] = pa.Column(None, checks=[_IS_NUMERIC, *checks], nullable=nullable)
    return columns


def _label_column(required: bool) -> pa.Column:
    return pa.Column(str, pa.Check.isin(LABELS), nullable=False, required=required)


# Present only in synthetic data, where the generating probability is known.
_TRUE_PROBABILITY_COLUMN = pa.Column("float64", pa.Check.in_range(0.0, 1.0), nullable=False, required=False)


def _polls_add_up(frame: pd.DataFrame) -> pd.Series:
    total = frame["poll_candidate_a"] + frame["poll_candidate_b"] + frame["undecided_rate"]
    return total <= 1.0 + POLL_SUM_TOLERANCE


def raw_regions_schema(labelled: bool) -> pa.DataFrameSchema:
    """Regions as they arrive: any numeric dtype, gaps allowed (cleaning handles them), hard ranges enforced."""
    return pa.DataFrameSchema(
        {
            REGION_ID: pa.Column(str, nullable=False, unique=True),
            **_input_columns(nullable=True, strict_types=False),
            LABEL: _label_column(required=labelled),
            TRUE_PROBABILITY: _TRUE_PROBABILITY_COLUMN,
        },
        name="raw_regions" if labelled else "raw_current_regions",
    )


def cleaned_regions_schema(labelled: bool) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            REGION_ID: pa.Column(str, nullable=False, unique=True),
            **_input_columns(nullable=False, strict_types=True),
            LABEL: _label_column(required=labelled),
            TRUE_PROBABILITY: _TRUE_PROBABILITY_COLUMN,
        },
        checks=[pa.Check(_polls_add_up, name=f"poll shares + undecided <= {1 + POLL_SUM_TOLERANCE:g}")],
        name="cleaned_regions" if labelled else "cleaned_current_regions",
    )


_FINITE = pa.Check(lambda s: np.isfinite(s), name="finite")

FEATURES_SCHEMA = pa.DataFrameSchema(
    {
        REGION_ID: pa.Column(str, nullable=False, unique=True),
        **{name: pa.Column("float64", _FINITE, nullable=False) for name in FEATURE_NAMES},
        TARGET: pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
        SPLIT: pa.Column(str, pa.Check.isin(SPLITS), nullable=False),
        TRUE_PROBABILITY: _TRUE_PROBABILITY_COLUMN,
    },
    checks=[pa.Check(lambda f: set(f[SPLIT]) == set(SPLITS), name="both train and test rows present")],
    strict=True,
    name="region_features",
)

PREDICTIONS_SCHEMA = pa.DataFrameSchema(
    {
        REGION_ID: pa.Column(str, nullable=False, unique=True),
        "predicted_winner": pa.Column(str, pa.Check.isin(LABELS), nullable=False),
        "probability_candidate_a": pa.Column("float64", pa.Check.in_range(0.0, 1.0), nullable=False),
        "probability_candidate_b": pa.Column("float64", pa.Check.in_range(0.0, 1.0), nullable=False),
        "confidence": pa.Column("float64", pa.Check.in_range(0.5, 1.0), nullable=False),
        "model_version": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
    },
    checks=[
        pa.Check(
            lambda f: (f["probability_candidate_a"] + f["probability_candidate_b"] - 1.0).abs() < 1e-9,
            name="probabilities sum to 1",
        )
    ],
    strict=True,
    name="batch_predictions",
)
