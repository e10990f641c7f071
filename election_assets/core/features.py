"""Feature engineering: the ONE implementation used by training (Dagster assets) and serving (the API).

Input is a float matrix whose columns are ``INPUT_FIELD_NAMES`` in that order; output is a float matrix whose
columns are ``FEATURE_NAMES``. It is pure NumPy and row-independent, so a row gets the same features alone
or inside a batch, and the API can build features for one request without pandas.

Each derived feature is written once, as arithmetic on named columns. A batch evaluates the formulas on NumPy
column vectors; a handful of rows (one API request) evaluates the same formulas on Python floats, which is
several times faster than two dozen NumPy calls on one-element arrays. Both give the same bits: ``+ - * /`` and
``abs`` are correctly rounded IEEE operations in both, and the only transcendental functions (the logs) and
the income bands are computed by NumPy for both.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from election_assets.core.schema import INPUT_FIELD_NAMES

# Income bands follow the US household-income brackets analysts quote (USD).
INCOME_BAND_EDGES = np.array([35_000.0, 50_000.0, 75_000.0, 100_000.0, 150_000.0])
_EPS = 1e-6

# The namespace a formula reads: the 14 inputs plus the features NumPy computes for both paths.
_Columns = namedtuple("_Columns", (*INPUT_FIELD_NAMES, "log_population", "log_income", "income_band"))
_POPULATION = INPUT_FIELD_NAMES.index("population")
_INCOME = INPUT_FIELD_NAMES.index("median_income")


def _poll_lead(c: Any) -> Any:
    return c.poll_candidate_a - c.poll_candidate_b


def _favorability_gap(c: Any) -> Any:
    return c.candidate_a_favorability - c.candidate_b_favorability


# Each derived feature is a named function of the columns (NumPy vectors or floats; ``abs`` works on both).
# Order is the model's column order.
_DERIVED: dict[str, Callable[[Any], Any]] = {
    "poll_lead": _poll_lead,
    "poll_share_a": lambda c: c.poll_candidate_a / (c.poll_candidate_a + c.poll_candidate_b + _EPS),
    "decided_share": lambda c: c.poll_candidate_a + c.poll_candidate_b,
    "undecided_adjusted_lead": lambda c: _poll_lead(c) / (1.0 - c.undecided_rate + _EPS),
    "competitiveness": lambda c: 1.0 - abs(_poll_lead(c)),
    "favorability_gap": _favorability_gap,
    "favorability_total": lambda c: c.candidate_a_favorability + c.candidate_b_favorability,
    "favorability_x_undecided": lambda c: _favorability_gap(c) * c.undecided_rate,
    "poll_favorability_agreement": lambda c: _poll_lead(c) * _favorability_gap(c),
    "sentiment_weighted_lead": lambda c: _poll_lead(c) * (1.0 + c.social_sentiment_score),
    "sentiment_x_urban": lambda c: c.social_sentiment_score * c.urban_ratio,
    "turnout_x_margin": lambda c: c.prev_election_turnout * c.prev_winner_margin,
    "margin_x_registration": lambda c: c.prev_winner_margin * c.voter_registration_rate,
    "abs_prev_margin": lambda c: abs(c.prev_winner_margin),
    "expected_turnout": lambda c: c.voter_registration_rate * c.prev_election_turnout,
    "registration_gap": lambda c: c.voter_registration_rate - c.prev_election_turnout,
    "log_population": lambda c: c.log_population,
    "log_income": lambda c: c.log_income,
    "income_band": lambda c: c.income_band,
    "education_x_urban": lambda c: c.education_rate * c.urban_ratio,
    "education_x_income": lambda c: c.education_rate * c.log_income,
    "urban_density": lambda c: c.urban_ratio * c.log_population,
    "age_decades_from_40": lambda c: (c.median_age - 40.0) / 10.0,
}

DERIVED_FEATURE_NAMES: tuple[str, ...] = tuple(_DERIVED)
FEATURE_NAMES: tuple[str, ...] = INPUT_FIELD_NAMES + DERIVED_FEATURE_NAMES

_FORMULAS = tuple(_DERIVED.values())
# Up to this many rows, the formulas run on Python floats (one request); above it, on NumPy vectors.
_SCALAR_ROWS = 4


def _numpy_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    income = x[:, _INCOME]
    band = np.searchsorted(INCOME_BAND_EDGES, income, side="right").astype(np.float64)  # == np.digitize
    return np.log(x[:, _POPULATION]), np.log(income), band


def _scalar_rows(x: np.ndarray) -> np.ndarray | None:
    log_population, log_income, band = (column.tolist() for column in _numpy_columns(x))
    rows = x.tolist()
    try:
        for i, row in enumerate(rows):
            c = _Columns(*row, log_population[i], log_income[i], band[i])
            row.extend([formula(c) for formula in _FORMULAS])
    except ArithmeticError:  # a division by zero on out-of-range input: NumPy's inf/nan semantics apply
        return None
    return np.array(rows, dtype=np.float64)


def _vector_rows(x: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), len(FEATURE_NAMES)))
    out[:, : x.shape[1]] = x
    c = _Columns(*x.T, *_numpy_columns(x))
    for j, formula in enumerate(_FORMULAS, start=x.shape[1]):
        out[:, j] = formula(c)
    return out


def engineer_features(inputs: np.ndarray) -> np.ndarray:
    """Map an ``(n, len(INPUT_FIELD_NAMES))`` input matrix to the ``(n, len(FEATURE_NAMES))`` feature matrix."""
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(INPUT_FIELD_NAMES):
        raise ValueError(f"expected an (n, {len(INPUT_FIELD_NAMES)}) input matrix, got shape {x.shape}")
    if 0 < len(x) <= _SCALAR_ROWS:
        features = _scalar_rows(x)
        if features is not None:
            return features
    return _vector_rows(x)


def input_matrix(rows: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Stack records (dicts keyed by input field name) into the input matrix, in the canonical column order."""
    return np.array([[row[name] for name in INPUT_FIELD_NAMES] for row in rows], dtype=np.float64).reshape(
        len(rows), len(INPUT_FIELD_NAMES)
    )
