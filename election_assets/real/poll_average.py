"""What the polls say about each state as of a day: a national swing from national and state polls, and each state's
swing from its own polls, shrunk towards the national swing where its polls are few.

Input is the tidy poll table (``sources.tidy_polls``: one row per poll, ``dem_share`` its Democratic two-party share).
A poll counts only if its field period ended before the as-of day (its ``end_date``, or its ``median_date`` where the
source gives no end), so a forecast as of a day can be rebuilt later exactly as it was. Swings are measured against
the previous election's result: a poll of a state says how far the state moved since then, which pools across states
far better than the raw shares do.

A poll weighs less the older it is (``PollWeighting.half_life_days``) and grows with its sample like the square
root, capped (``SAMPLE_CAP``), since beyond that the pollster's own error dominates; ``PollWeighting.prior_polls``
full-weight polls' worth of the national swing anchors each state. Which half-life and anchor a forecast uses is chosen
among ``POLL_WEIGHTINGS`` by walk forward over the elections before it (``features.choose_poll_weighting``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from election_assets.real.polls import NATIONAL

WINDOW_DAYS = 90  # older polls are left out altogether: the summer's race says little about November's
SAMPLE_CAP = 1500.0
TYPICAL_SAMPLE = 600.0  # the weight of a poll of unknown size, and of a full-weight poll's sample


@dataclass(frozen=True)
class PollWeighting:
    """How the average weighs polls: the half-life of a poll's weight in days, and how many full-weight polls' worth
    of the national swing anchor each state's own polls."""

    half_life_days: float
    prior_polls: float

    # Each field's name among a model manifest's hyperparameters and a run's MLflow params.
    PARAMS: ClassVar[dict[str, str]] = {"half_life_days": "poll_half_life_days", "prior_polls": "poll_prior_polls"}

    @property
    def label(self) -> str:
        return f"half-life {self.half_life_days:g} days, {self.prior_polls:g} prior polls"

    def params(self) -> dict[str, float]:
        """The weighting as a model manifest's hyperparameters and MLflow params record it."""
        return {param: getattr(self, field) for field, param in self.PARAMS.items()}

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> PollWeighting:
        """The weighting ``params`` record; a model published before the weighting was chosen records none."""
        missing = [param for param in cls.PARAMS.values() if param not in params]
        if missing:
            raise ValueError(
                f"the model records no poll weighting ({', '.join(missing)} missing from its hyperparameters): it "
                "was published before the poll weighting was chosen by walk forward; publish it again (make real)"
            )
        return cls(**{field: float(params[param]) for field, param in cls.PARAMS.items()})


# The weightings a walk forward chooses among: a fortnight's half-life and two polls' anchor were the fixed weighting
# before the choice existed, and stay the one used where no earlier election has polls to choose with.
DEFAULT_WEIGHTING = PollWeighting(half_life_days=14.0, prior_polls=2.0)
POLL_WEIGHTINGS: tuple[PollWeighting, ...] = tuple(
    PollWeighting(half_life, prior) for half_life in (7.0, 14.0, 28.0, 56.0) for prior in (0.5, 2.0, 8.0)
)


def poll_end(polls: pd.DataFrame) -> pd.Series:
    """The day a poll's field period ended, or its median day where the source gives no end."""
    return polls["end_date"].fillna(polls["median_date"])


def polls_before(polls: pd.DataFrame, year: int, as_of: pd.Timestamp, half_life_days: float) -> pd.DataFrame:
    """The polls of ``year`` whose field period ended before ``as_of``, within the window, with their weights."""
    end = poll_end(polls)
    age = (as_of - end).dt.days
    rows = polls[(polls["year"] == year) & (end < as_of) & (age <= WINDOW_DAYS)]
    age = age.loc[rows.index]
    sample = rows["sample_size"].astype("float64").fillna(TYPICAL_SAMPLE).clip(upper=SAMPLE_CAP)
    weight = 0.5 ** (age / half_life_days) * np.sqrt(sample / TYPICAL_SAMPLE)
    return rows.assign(weight=weight.to_numpy())


@dataclass(frozen=True)
class PollEstimate:
    """Each state's expected Democratic two-party share from the polls, and what it rests on."""

    state_share: pd.Series  # by state postal code; empty when no poll of the year ended before the as-of day
    national_swing: float  # NaN without polls
    state_weight: pd.Series  # the summed weight of each state's own polls (0 for a state nobody polled)
    polls_used: int

    @property
    def has_polls(self) -> bool:
        return self.polls_used > 0


def estimate(
    polls: pd.DataFrame,
    year: int,
    as_of: pd.Timestamp,
    state_previous: pd.Series,
    national_previous: float,
    weighting: PollWeighting,
) -> PollEstimate:
    """The polls' picture of every state in ``state_previous`` (the states' previous two-party shares) as of
    ``as_of``; ``national_previous`` is the previous national two-party share."""
    used = polls_before(polls, year, as_of, weighting.half_life_days)
    used = used[used["geography"].isin([NATIONAL, *state_previous.index])]
    if used.empty:
        empty = pd.Series(dtype=float)
        return PollEstimate(empty, float("nan"), pd.Series(0.0, index=state_previous.index), 0)
    previous = used["geography"].map(state_previous).fillna(national_previous)
    swing = used["dem_share"] - previous.to_numpy()
    # The national swing: every poll's swing, national and state alike, by weight.
    national_swing = float(np.average(swing, weights=used["weight"]))
    in_states = used["geography"] != NATIONAL
    by_state = pd.DataFrame({"state": used.loc[in_states, "geography"], "swing": swing[in_states]})
    by_state["weighted"] = by_state["swing"] * used.loc[in_states, "weight"]
    by_state["weight"] = used.loc[in_states, "weight"]
    sums = by_state.groupby("state")[["weighted", "weight"]].sum().reindex(state_previous.index, fill_value=0.0)
    prior = weighting.prior_polls
    state_swing = (sums["weighted"] + prior * national_swing) / (sums["weight"] + prior)
    share = (state_previous + state_swing).clip(0.0, 1.0).rename("poll_dem_share")
    return PollEstimate(share, national_swing, sums["weight"], len(used))
