"""Per-election county features for real mode, built only from what was known before election day.

Every feature of election ``Y`` comes from results of ``Y - 4`` and ``Y - 8``, polls that ended before
election day of ``Y``, and demographics whose measurement ended before ``Y`` (``as_of_year < Y``). The
outcome of ``Y`` is attached in columns prefixed ``outcome_`` for training and scoring, and nothing else in a
row reads it: ``election_assets_tests/test_real_features.py`` perturbs the year-``Y`` results and checks that
no feature moves.

Pure pandas/NumPy (no Dagster), shared by the assets, the backtest and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

ELECTION_YEARS: tuple[int, ...] = (2000, 2004, 2008, 2012, 2016, 2020)
# An election needs the one before it for its features, so the first one that can be modelled is 2004; the
# year after the last one in the data is the election we forecast.
NEXT_ELECTION = ELECTION_YEARS[-1] + 4
FEATURE_YEARS: tuple[int, ...] = (*ELECTION_YEARS[1:], NEXT_ELECTION)

# A state's poll average uses the polls that ended in the last POLL_WINDOW_DAYS before election day, or its
# MIN_POLLS latest polls when the window holds fewer (small states are polled rarely).
POLL_WINDOW_DAYS = 30
MIN_POLLS = 5

# Demographics as measured before the election; the rural-urban code and education change rarely, so the
# latest vintage before the election stands in for the election year itself.
DEMOGRAPHIC_FEATURES: dict[str, str] = {
    "bachelor_rate": "pct_bachelor_plus",
    "less_hs_rate": "pct_less_hs",
    "rural_urban_code": "rucc",
    "unemployment_rate": "unemployment_rate",
}

FEATURE_NAMES: tuple[str, ...] = (
    "prev_dem_share",
    "prev_swing",
    "prev_share_vs_state",
    "state_prev_swing",
    "prev_swing_vs_state",
    "log_prev_votes",
    "prev_votes_growth",
    *DEMOGRAPHIC_FEATURES,
    "unemployment_change",
)
_CHANGES = ("prev_swing", "prev_swing_vs_state", "prev_votes_growth", "unemployment_change")
# Known before the election, but used to set the state-wide swing rather than as a model input.
STATE_COLUMNS: tuple[str, ...] = ("state_prev_dem_share", "poll_dem_share")
OUTCOME_COLUMNS: tuple[str, ...] = (
    "outcome_dem_share",
    "outcome_dem_win",
    "outcome_two_party_votes",
    "outcome_total_votes",
    "outcome_state_dem_share",
)


def election_day(year: int) -> date:
    """US federal election day: the Tuesday after the first Monday of November."""
    first_monday = date(year, 11, 1) + timedelta(days=(0 - date(year, 11, 1).weekday()) % 7)
    return first_monday + timedelta(days=1)


def dem_two_party_share(frame: pd.DataFrame) -> pd.Series:
    return frame["dem_votes"] / (frame["dem_votes"] + frame["rep_votes"])


def state_poll_average(polls: pd.DataFrame, year: int) -> pd.Series:
    """The Democratic two-party share in each state's polls that ended before election day of ``year``."""
    cutoff = pd.Timestamp(election_day(year))
    polls = polls[(polls["year"] == year) & (polls["end_date"] < cutoff)]
    polls = polls.assign(
        share=polls["dem"] / (polls["dem"] + polls["rep"]),
        days_before=(cutoff - polls["end_date"]).dt.days,
    )

    def average(state_polls: pd.DataFrame) -> float:
        recent = state_polls[state_polls["days_before"] <= POLL_WINDOW_DAYS]
        if len(recent) < MIN_POLLS:
            recent = state_polls.nsmallest(MIN_POLLS, "days_before")
        return float(recent["share"].mean())

    averages = {state: average(state_polls) for state, state_polls in polls.groupby("state_po")}
    return pd.Series(averages, dtype=float, name="poll_dem_share")


def demographic_before(demographics: pd.DataFrame, variable: str, year: int) -> pd.Series:
    """Each county's latest measurement of ``variable`` that ended before ``year``."""
    rows = demographics[(demographics["variable"] == variable) & (demographics["as_of_year"] < year)]
    latest = rows.sort_values("as_of_year").groupby("county_fips").tail(1)
    return latest.set_index("county_fips")["value"]


@dataclass(frozen=True)
class ElectionFeatures:
    frame: pd.DataFrame
    # Units dropped or left with missing values, by reason, for the asset's metadata.
    counts: dict[str, int]


def _results(county_returns: pd.DataFrame, year: int) -> pd.DataFrame:
    rows = county_returns[county_returns["year"] == year].set_index("county_fips")
    return rows.assign(dem_share=dem_two_party_share(rows))


def _state_shares(state_returns: pd.DataFrame, year: int) -> pd.Series:
    rows = state_returns[state_returns["year"] == year].set_index("state_po")
    return dem_two_party_share(rows)


def build_election_features(
    year: int,
    county_returns: pd.DataFrame,
    state_returns: pd.DataFrame,
    state_polls: pd.DataFrame,
    demographics: pd.DataFrame,
) -> ElectionFeatures:
    """One row per county that voted in the previous election: features for ``year`` and, when ``year`` is in
    the data, its outcome. Counties without a previous result cannot be forecast and are counted, not dropped
    silently."""
    previous, before_previous = _results(county_returns, year - 4), _results(county_returns, year - 8)
    if previous.empty:
        raise ValueError(f"no county results for {year - 4}, the election before {year}")
    state_previous, state_before = _state_shares(state_returns, year - 4), _state_shares(state_returns, year - 8)

    frame = pd.DataFrame(index=previous.index)
    frame["year"] = year
    frame["state_po"] = previous["state_po"]
    frame["county_name"] = previous["county_name"]
    frame["prev_dem_share"] = previous["dem_share"]
    frame["prev_swing"] = previous["dem_share"] - before_previous["dem_share"].reindex(frame.index)
    frame["state_prev_dem_share"] = frame["state_po"].map(state_previous)
    frame["prev_share_vs_state"] = frame["prev_dem_share"] - frame["state_prev_dem_share"]
    frame["state_prev_swing"] = frame["state_prev_dem_share"] - frame["state_po"].map(state_before)
    frame["prev_swing_vs_state"] = frame["prev_swing"] - frame["state_prev_swing"]
    frame["log_prev_votes"] = np.log(previous["total_votes"].clip(lower=1))
    frame["prev_votes_growth"] = frame["log_prev_votes"] - np.log(
        before_previous["total_votes"].reindex(frame.index).clip(lower=1)
    )
    for feature, variable in DEMOGRAPHIC_FEATURES.items():
        frame[feature] = demographic_before(demographics, variable, year).reindex(frame.index)
    for share in ("bachelor_rate", "less_hs_rate"):
        frame[share] = frame[share] / 100.0
    unemployment_earlier = demographic_before(demographics, "unemployment_rate", year - 4).reindex(frame.index)
    frame["unemployment_change"] = frame["unemployment_rate"] - unemployment_earlier
    frame["poll_dem_share"] = frame["state_po"].map(state_poll_average(state_polls, year))

    counts = {f"missing_{name}": int(frame[name].isna().sum()) for name in FEATURE_NAMES}
    # A change we cannot see (the county did not exist, or the data starts too late) counts as no change.
    frame[list(_CHANGES)] = frame[list(_CHANGES)].fillna(0.0)
    counts["missing_poll_dem_share"] = int(frame["poll_dem_share"].isna().sum())
    counts["missing_state_prev_dem_share"] = int(frame["state_prev_dem_share"].isna().sum())

    current = _results(county_returns, year)
    if not current.empty:
        counts["new_units_without_previous_result"] = int((~current.index.isin(frame.index)).sum())
        counts["units_without_outcome"] = int((~frame.index.isin(current.index)).sum())
        frame = frame[frame.index.isin(current.index)]
        outcome = current.reindex(frame.index)
        frame["outcome_dem_share"] = outcome["dem_share"]
        frame["outcome_dem_win"] = (outcome["dem_share"] > 0.5).astype(int)
        frame["outcome_two_party_votes"] = outcome["dem_votes"] + outcome["rep_votes"]
        frame["outcome_total_votes"] = outcome["total_votes"]
        frame["outcome_state_dem_share"] = frame["state_po"].map(_state_shares(state_returns, year))
    counts = {reason: count for reason, count in counts.items() if count}
    return ElectionFeatures(frame.reset_index(names="county_fips"), counts)


def has_outcome(frame: pd.DataFrame) -> bool:
    return "outcome_dem_share" in frame.columns
