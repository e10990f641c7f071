"""Real mode's input contract and feature formulas: ONE implementation for the backtest, the forecast and the API.

A real-mode row describes one county before an election: results of the two previous elections (county and
state), turnout, ERS demographics and, when the state was polled, its poll average. ``real_model_features``
turns an input matrix (columns ``REAL_INPUT_FIELD_NAMES``) into the model's features (columns
``REAL_FEATURE_NAMES``), then whether the state was polled and the expected state swing the model adds on top
(``REAL_MODEL_COLUMNS``).

Pure NumPy and row-independent, like ``election_assets.core.features`` for synthetic mode.
"""

from __future__ import annotations

import math

import numpy as np

from election_assets.core.schema import InputField


def _percent(name: str, description: str) -> InputField:
    return InputField(name, "float", description, 0.0, 100.0)


# The most votes a US county has cast for president is about 4.3 million (Los Angeles, 2020): five times that is
# not a county.
MAX_COUNTY_VOTES = 20_000_000


def _votes(name: str, description: str) -> InputField:
    return InputField(name, "int", description, 0, MAX_COUNTY_VOTES, exclusive_minimum=True)


REAL_INPUT_FIELDS: tuple[InputField, ...] = (
    InputField.share("prev_dem_share", "Democratic two-party vote share in the county at the previous election"),
    InputField.share("prev2_dem_share", "Democratic two-party vote share in the county two elections ago"),
    InputField.share("state_prev_dem_share", "Democratic two-party vote share in the state at the previous election"),
    InputField.share("state_prev2_dem_share", "Democratic two-party vote share in the state two elections ago"),
    _votes("prev_total_votes", "Votes cast in the county at the previous election"),
    _votes("prev2_total_votes", "Votes cast in the county two elections ago"),
    InputField.share("bachelor_rate", "Share of adults with a bachelor's degree or more (latest census/ACS before)"),
    InputField.share("less_hs_rate", "Share of adults without a high-school diploma (latest census/ACS before)"),
    InputField("rural_urban_code", "float", "USDA rural-urban continuum code (1 metro ... 9 remote rural)", 1.0, 9.0),
    _percent("unemployment_rate", "Unemployment rate in the year before the election, percent"),
    _percent("prev_unemployment_rate", "Unemployment rate four years earlier, percent"),
    InputField.share(
        "poll_dem_share", "Democratic two-party share in the state's polls; absent when it was not polled"
    ),
)
REAL_INPUT_FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in REAL_INPUT_FIELDS)
# The only field a real-mode request may leave out: without polls the model expects no state swing.
OPTIONAL_REAL_FIELDS: frozenset[str] = frozenset({"poll_dem_share"})

REAL_FEATURE_NAMES: tuple[str, ...] = (
    "prev_dem_share",
    "prev_swing",
    "prev_share_vs_state",
    "state_prev_swing",
    "prev_swing_vs_state",
    "log_prev_votes",
    "prev_votes_growth",
    "bachelor_rate",
    "less_hs_rate",
    "rural_urban_code",
    "unemployment_rate",
    "unemployment_change",
)
# Two more model columns after the features: whether the state was polled (it sets the spread of the forecast)
# and the expected state swing (the polls' swing, or none).
POLLED = "polled"
STATE_SWING = "state_swing"
REAL_MODEL_COLUMNS: tuple[str, ...] = (*REAL_FEATURE_NAMES, POLLED, STATE_SWING)

_COLUMN = {name: index for index, name in enumerate(REAL_INPUT_FIELD_NAMES)}


def real_model_features(inputs: np.ndarray) -> np.ndarray:
    """(n, 12 inputs) -> (n, ``REAL_MODEL_COLUMNS``). ``poll_dem_share`` may be NaN (the state was not polled)."""
    inputs = np.asarray(inputs, dtype=np.float64)

    def column(name: str) -> np.ndarray:
        return inputs[:, _COLUMN[name]]

    prev_swing = column("prev_dem_share") - column("prev2_dem_share")
    state_prev_swing = column("state_prev_dem_share") - column("state_prev2_dem_share")
    log_prev_votes = np.log(column("prev_total_votes"))
    poll_swing = column("poll_dem_share") - column("state_prev_dem_share")
    return np.column_stack(
        [
            column("prev_dem_share"),
            prev_swing,
            column("prev_dem_share") - column("state_prev_dem_share"),
            state_prev_swing,
            prev_swing - state_prev_swing,
            log_prev_votes,
            log_prev_votes - np.log(column("prev2_total_votes")),
            column("bachelor_rate"),
            column("less_hs_rate"),
            column("rural_urban_code"),
            column("unemployment_rate"),
            column("unemployment_rate") - column("prev_unemployment_rate"),
            (~np.isnan(poll_swing)).astype(np.float64),
            np.where(np.isnan(poll_swing), 0.0, poll_swing),
        ]
    )


_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF without SciPy (the API has no SciPy), used by training and serving alike."""
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64))
