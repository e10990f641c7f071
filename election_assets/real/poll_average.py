"""What the polls say about each state as of a day: a national swing from national and state polls, and each state's
swing from its own polls, shrunk towards the national swing where its polls are few.

Input is the tidy poll table (``sources.tidy_polls``: one row per poll, ``dem_share`` its Democratic two-party share).
A poll counts only if its field period ended before the as-of day (its ``end_date``, or its ``median_date`` where the
source gives no end), so a forecast as of a day can be rebuilt later exactly as it was. Swings are measured against
the previous election's result: a poll of a state says how far the state moved since then, which pools across states
far better than the raw shares do.

The weights are fixed beforehand, not fitted: a poll weighs less the older it is (half-life ``HALF_LIFE_DAYS``) and
grows with its sample like the square root, capped (``SAMPLE_CAP``), since beyond that the pollster's own error
dominates; ``PRIOR_POLLS`` full-weight polls' worth of the national swing anchors each state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from election_assets.real.polls import NATIONAL

HALF_LIFE_DAYS = 14.0
WINDOW_DAYS = 90  # older polls are left out altogether: the summer's race says little about November's
SAMPLE_CAP = 1500.0
TYPICAL_SAMPLE = 600.0  # the weight of a poll of unknown size, and of a full-weight poll's sample
PRIOR_POLLS = 2.0


def poll_end(polls: pd.DataFrame) -> pd.Series:
    """The day a poll's field period ended, or its median day where the source gives no end."""
    return polls["end_date"].fillna(polls["median_date"])


def polls_before(polls: pd.DataFrame, year: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """The polls of ``year`` whose field period ended before ``as_of``, within the window, with their weights."""
    end = poll_end(polls)
    age = (as_of - end).dt.days
    rows = polls[(polls["year"] == year) & (end < as_of) & (age <= WINDOW_DAYS)]
    age = age.loc[rows.index]
    sample = rows["sample_size"].astype("float64").fillna(TYPICAL_SAMPLE).clip(upper=SAMPLE_CAP)
    weight = 0.5 ** (age / HALF_LIFE_DAYS) * np.sqrt(sample / TYPICAL_SAMPLE)
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
    polls: pd.DataFrame, year: int, as_of: pd.Timestamp, state_previous: pd.Series, national_previous: float
) -> PollEstimate:
    """The polls' picture of every state in ``state_previous`` (the states' previous two-party shares) as of
    ``as_of``; ``national_previous`` is the previous national two-party share."""
    used = polls_before(polls, year, as_of)
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
    state_swing = (sums["weighted"] + PRIOR_POLLS * national_swing) / (sums["weight"] + PRIOR_POLLS)
    share = (state_previous + state_swing).clip(0.0, 1.0).rename("poll_dem_share")
    return PollEstimate(share, national_swing, sums["weight"], len(used))
