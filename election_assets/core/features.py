"""Feature engineering: the ONE implementation used by training (Dagster assets) and serving (the API).

Input is a float matrix whose columns are ``INPUT_FIELD_NAMES`` in that order; output is a float matrix whose
columns are ``FEATURE_NAMES``. It is pure NumPy and row-independent, so a row gets the same features alone
or inside a batch, and the API can build features for one request without pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from election_assets.core.schema import INPUT_FIELD_NAMES

# Income bands follow the US household-income brackets analysts quote (USD).
INCOME_BAND_EDGES = np.array([35_000.0, 50_000.0, 75_000.0, 100_000.0, 150_000.0])
_EPS = 1e-6

_COLUMN = {name: i for i, name in enumerate(INPUT_FIELD_NAMES)}


def _col(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, _COLUMN[name]]


def _poll_lead(x: np.ndarray) -> np.ndarray:
    return _col(x, "poll_candidate_a") - _col(x, "poll_candidate_b")


def _favorability_gap(x: np.ndarray) -> np.ndarray:
    return _col(x, "candidate_a_favorability") - _col(x, "candidate_b_favorability")


def _log_income(x: np.ndarray) -> np.ndarray:
    return np.log(_col(x, "median_income"))


def _log_population(x: np.ndarray) -> np.ndarray:
    return np.log(_col(x, "population"))


# Each derived feature is a named, vectorised function of the input matrix. Order is the model's column order.
_DERIVED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "poll_lead": _poll_lead,
    "poll_share_a": lambda x: (
        _col(x, "poll_candidate_a") / (_col(x, "poll_candidate_a") + _col(x, "poll_candidate_b") + _EPS)
    ),
    "decided_share": lambda x: _col(x, "poll_candidate_a") + _col(x, "poll_candidate_b"),
    "undecided_adjusted_lead": lambda x: _poll_lead(x) / (1.0 - _col(x, "undecided_rate") + _EPS),
    "competitiveness": lambda x: 1.0 - np.abs(_poll_lead(x)),
    "favorability_gap": _favorability_gap,
    "favorability_total": lambda x: _col(x, "candidate_a_favorability") + _col(x, "candidate_b_favorability"),
    "favorability_x_undecided": lambda x: _favorability_gap(x) * _col(x, "undecided_rate"),
    "poll_favorability_agreement": lambda x: _poll_lead(x) * _favorability_gap(x),
    "sentiment_weighted_lead": lambda x: _poll_lead(x) * (1.0 + _col(x, "social_sentiment_score")),
    "sentiment_x_urban": lambda x: _col(x, "social_sentiment_score") * _col(x, "urban_ratio"),
    "turnout_x_margin": lambda x: _col(x, "prev_election_turnout") * _col(x, "prev_winner_margin"),
    "margin_x_registration": lambda x: _col(x, "prev_winner_margin") * _col(x, "voter_registration_rate"),
    "abs_prev_margin": lambda x: np.abs(_col(x, "prev_winner_margin")),
    "expected_turnout": lambda x: _col(x, "voter_registration_rate") * _col(x, "prev_election_turnout"),
    "registration_gap": lambda x: _col(x, "voter_registration_rate") - _col(x, "prev_election_turnout"),
    "log_population": _log_population,
    "log_income": _log_income,
    "income_band": lambda x: np.digitize(_col(x, "median_income"), INCOME_BAND_EDGES).astype(float),
    "education_x_urban": lambda x: _col(x, "education_rate") * _col(x, "urban_ratio"),
    "education_x_income": lambda x: _col(x, "education_rate") * _log_income(x),
    "urban_density": lambda x: _col(x, "urban_ratio") * _log_population(x),
    "age_decades_from_40": lambda x: (_col(x, "median_age") - 40.0) / 10.0,
}

DERIVED_FEATURE_NAMES: tuple[str, ...] = tuple(_DERIVED)
FEATURE_NAMES: tuple[str, ...] = INPUT_FIELD_NAMES + DERIVED_FEATURE_NAMES


def engineer_features(inputs: np.ndarray) -> np.ndarray:
    """Map an ``(n, len(INPUT_FIELD_NAMES))`` input matrix to the ``(n, len(FEATURE_NAMES))`` feature matrix."""
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(INPUT_FIELD_NAMES):
        raise ValueError(f"expected an (n, {len(INPUT_FIELD_NAMES)}) input matrix, got shape {x.shape}")
    derived = np.column_stack([fn(x) for fn in _DERIVED.values()]) if len(x) else np.empty((0, len(_DERIVED)))
    return np.hstack([x, derived])


def input_matrix(rows: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Stack records (dicts keyed by input field name) into the input matrix, in the canonical column order."""
    return np.array([[row[name] for name in INPUT_FIELD_NAMES] for row in rows], dtype=np.float64).reshape(
        len(rows), len(INPUT_FIELD_NAMES)
    )
