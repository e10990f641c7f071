"""Per-election county features for real mode, built only from what was known before election day.

Every feature of election ``Y`` comes from results of ``Y - 4`` and ``Y - 8``, polls that ended before
election day of ``Y``, and demographics whose measurement ended before ``Y`` (``as_of_year < Y``). The
outcome of ``Y`` is attached in columns prefixed ``outcome_`` for training and scoring, and nothing else in a
row reads it: ``election_assets_tests/test_real_model.py`` perturbs the year-``Y`` results and checks that
no feature moves.

Pure pandas/NumPy (no Dagster), shared by the assets, the backtest and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from election_assets.core.real_features import (
    REAL_INPUT_FIELD_NAMES,
    REAL_MODEL_COLUMNS,
    real_model_features,
)
from election_assets.real.poll_average import (
    DEFAULT_WEIGHTING,
    POLL_WEIGHTINGS,
    PollEstimate,
    PollWeighting,
    estimate,
)
from election_assets.real.polls import tidy_polls
from election_assets.real.sources import (
    SHIPPED_REAL_DATA_DIR,
    read_source,
    tidy_county_returns,
    tidy_demographics,
    tidy_state_returns,
)

ELECTION_YEARS: tuple[int, ...] = (2000, 2004, 2008, 2012, 2016, 2020)
# An election needs the one before it for its features, so the first one that can be modelled is 2004; the
# year after the last one in the data is the election we forecast.
NEXT_ELECTION = ELECTION_YEARS[-1] + 4
FEATURE_YEARS: tuple[int, ...] = (*ELECTION_YEARS[1:], NEXT_ELECTION)

# The input field the polls fill: the state's expected share from its polls (``poll_average``).
POLL = "poll_dem_share"

# Demographics as measured before the election; the rural-urban code and education change rarely, so the
# latest vintage before the election stands in for the election year itself.
DEMOGRAPHIC_INPUTS: dict[str, str] = {
    "bachelor_rate": "pct_bachelor_plus",
    "less_hs_rate": "pct_less_hs",
    "rural_urban_code": "rucc",
    "unemployment_rate": "unemployment_rate",
}
# Every column a forecast of the year may read: the inputs, the features and the expected state swing.
KNOWN_BEFORE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((*REAL_INPUT_FIELD_NAMES, *REAL_MODEL_COLUMNS)))


# The final forecast is made the day before the election.
FINAL_FORECAST_DAYS_BEFORE = 1


def election_day(year: int) -> date:
    """US federal election day: the Tuesday after the first Monday of November."""
    first_monday = date(year, 11, 1) + timedelta(days=(0 - date(year, 11, 1).weekday()) % 7)
    return first_monday + timedelta(days=1)


def forecast_day(year: int) -> date:
    """The day the final forecast of an election is made: the day before it, from the polls that ended before."""
    return election_day(year) - timedelta(days=FINAL_FORECAST_DAYS_BEFORE)


def dem_two_party_share(frame: pd.DataFrame) -> pd.Series:
    return frame["dem_votes"] / (frame["dem_votes"] + frame["rep_votes"])


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
    polls: PollEstimate
    weighting: WeightingChoice


def _results(county_returns: pd.DataFrame, year: int) -> pd.DataFrame:
    rows = county_returns[county_returns["year"] == year].set_index("county_fips")
    return rows.assign(dem_share=dem_two_party_share(rows))


def state_shares(state_returns: pd.DataFrame, year: int) -> pd.Series:
    """Each state's Democratic two-party share in ``year``, by postal code."""
    rows = state_returns[state_returns["year"] == year].set_index("state_po")
    return dem_two_party_share(rows)


def national_share(state_returns: pd.DataFrame, year: int) -> float:
    """The Democratic two-party share of the whole country in ``year``."""
    votes = state_returns.loc[state_returns["year"] == year, ["dem_votes", "rep_votes"]].sum()
    return float(votes["dem_votes"] / (votes["dem_votes"] + votes["rep_votes"]))


def poll_estimate(
    polls: pd.DataFrame, state_returns: pd.DataFrame, year: int, as_of: date, weighting: PollWeighting
) -> PollEstimate:
    """The polls' picture of each state for ``year`` from the polls that ended before ``as_of``, as swings from the
    previous election's results."""
    return estimate(
        polls,
        year,
        pd.Timestamp(as_of),
        state_shares(state_returns, year - 4),
        national_share(state_returns, year - 4),
        weighting,
    )


# Days before election day at which the poll average's errors are measured: the day before (the final forecast),
# then every week to 14 weeks, which covers a campaign from August.
POLL_ERROR_HORIZONS: tuple[int, ...] = (FINAL_FORECAST_DAYS_BEFORE, *range(7, 99, 7))


def poll_errors(
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
    weighting: PollWeighting,
    horizons: tuple[int, ...] = POLL_ERROR_HORIZONS,
) -> pd.DataFrame:
    """How far the poll average (weighed by ``weighting``) missed in every state of every election with polls, a
    result and a previous result, at each horizon: the state's share minus the polls' expected share as of
    ``days_before`` days before election day. Columns ``days_before``, ``year``, ``state_po``, ``residual`` and
    ``weight`` (the state's two-party votes), as ``forecaster.PollNoiseCurve`` reads them; an election without any
    poll yet at a horizon has no rows there. A forecaster reads only the years it trained on."""
    years = sorted(set(polls["year"]) & set(state_returns["year"]) & {year + 4 for year in state_returns["year"]})
    frames = []
    for year in years:
        rows = state_returns[state_returns["year"] == year].set_index("state_po")
        actual = dem_two_party_share(rows)
        for days in horizons:
            as_of = election_day(year) - timedelta(days=days)
            estimate = poll_estimate(polls, state_returns, year, as_of, weighting)
            if not estimate.has_polls:
                continue
            frame = pd.DataFrame(
                {
                    "days_before": days,
                    "year": year,
                    "state_po": actual.index,
                    "residual": (actual - estimate.state_share.reindex(actual.index)).to_numpy(),
                    "weight": (rows["dem_votes"] + rows["rep_votes"]).to_numpy(dtype=float),
                }
            )
            frames.append(frame.dropna())
    columns = ["days_before", "year", "state_po", "residual", "weight"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class WeightingChoice:
    """The poll weighting a forecast uses, and the walk forward that chose it."""

    chosen: PollWeighting
    validated_on: tuple[int, ...]  # the earlier elections with polls it was scored on; empty: the default
    scores: dict[PollWeighting, float]  # root mean square error of the day-before state averages

    @property
    def reason(self) -> str:
        if not self.validated_on:
            return f"{self.chosen.label}: the default, no earlier election with polls to choose with"
        years = ", ".join(map(str, self.validated_on))
        return (
            f"{self.chosen.label}: the smallest error of the day-before state poll averages over {years} "
            f"(root mean square {self.scores[self.chosen]:.4f}; the default's {self.scores[DEFAULT_WEIGHTING]:.4f})"
        )


def choose_poll_weighting(polls: pd.DataFrame, state_returns: pd.DataFrame, before: int) -> WeightingChoice:
    """The weighting, among ``POLL_WEIGHTINGS``, whose day-before state averages missed the results least over every
    election with polls before ``before``: root mean square over the states and DC of all those elections together,
    each state counting once as in the state Brier score. Nothing of ``before`` or later is read; the first in
    ``POLL_WEIGHTINGS``' order wins a tie, and ``DEFAULT_WEIGHTING`` is used when no earlier election has polls."""
    polls, state_returns = polls[polls["year"] < before], state_returns[state_returns["year"] < before]
    scores: dict[PollWeighting, float] = {}
    validated_on: tuple[int, ...] = ()
    for weighting in POLL_WEIGHTINGS:
        errors = poll_errors(polls, state_returns, weighting, horizons=(FINAL_FORECAST_DAYS_BEFORE,))
        if errors.empty:
            return WeightingChoice(DEFAULT_WEIGHTING, (), {})
        scores[weighting] = float(np.sqrt(np.mean(errors["residual"] ** 2)))
        validated_on = tuple(sorted(int(y) for y in errors["year"].unique()))
    return WeightingChoice(min(scores, key=scores.__getitem__), validated_on, scores)


def with_polls(frame: pd.DataFrame, polls: PollEstimate) -> pd.DataFrame:
    """``frame``'s counties with the poll estimate of their state and the model columns that follow from it: the one
    step a forecast of another day repeats."""
    frame = frame.assign(**{POLL: frame["state_po"].map(polls.state_share).astype("float64")})
    frame[list(REAL_MODEL_COLUMNS)] = real_model_features(frame[list(REAL_INPUT_FIELD_NAMES)].to_numpy(float))
    return frame


def build_election_features(
    year: int,
    county_returns: pd.DataFrame,
    state_returns: pd.DataFrame,
    polls: pd.DataFrame,
    demographics: pd.DataFrame,
    as_of: date | None = None,
) -> ElectionFeatures:
    """One row per county that voted in the previous election: features for ``year`` as of the day ``as_of``
    (default: the day before the election; only polls that ended before it count) and, when ``year`` is in the
    data, its outcome. Counties without a previous result cannot be forecast and are counted, not dropped
    silently."""
    previous, before_previous = _results(county_returns, year - 4), _results(county_returns, year - 8)
    if previous.empty:
        raise ValueError(f"no county results for {year - 4}, the election before {year}")
    state_previous, state_before = state_shares(state_returns, year - 4), state_shares(state_returns, year - 8)

    frame = pd.DataFrame(index=previous.index)
    frame["year"] = year
    frame["state_po"] = previous["state_po"]
    frame["county_name"] = previous["county_name"]
    frame["prev_dem_share"] = previous["dem_share"]
    frame["prev2_dem_share"] = before_previous["dem_share"].reindex(frame.index)
    frame["state_prev_dem_share"] = frame["state_po"].map(state_previous)
    frame["state_prev2_dem_share"] = frame["state_po"].map(state_before)
    frame["prev_total_votes"] = previous["total_votes"].clip(lower=1)
    frame["prev2_total_votes"] = before_previous["total_votes"].reindex(frame.index).clip(lower=1)
    for field, variable in DEMOGRAPHIC_INPUTS.items():
        frame[field] = demographic_before(demographics, variable, year).reindex(frame.index)
    for share in ("bachelor_rate", "less_hs_rate"):
        frame[share] = frame[share] / 100.0
    frame["prev_unemployment_rate"] = demographic_before(demographics, "unemployment_rate", year - 4).reindex(
        frame.index
    )
    counts = {f"missing_{name}": int(frame[name].isna().sum()) for name in REAL_INPUT_FIELD_NAMES if name != POLL}
    # A change we cannot see (the county did not exist, or the data starts too late) counts as no change.
    for earlier, latest in (
        ("prev2_dem_share", "prev_dem_share"),
        ("prev2_total_votes", "prev_total_votes"),
        ("prev_unemployment_rate", "unemployment_rate"),
    ):
        frame[earlier] = frame[earlier].fillna(frame[latest])
    # A county missing from a demographic table (Broomfield, CO before 2010) gets the year's median county.
    for field in DEMOGRAPHIC_INPUTS:
        frame[field] = frame[field].fillna(frame[field].median())
    # Every state gets the polls' estimate when the year has polls (a state nobody polled moves with the nation);
    # without any poll the field stays empty and the model expects no state swing. The average is weighed as a
    # forecaster of the year would have chosen from the elections before it.
    weighting = choose_poll_weighting(polls, state_returns, before=year)
    estimate = poll_estimate(polls, state_returns, year, as_of or forecast_day(year), weighting.chosen)
    frame = with_polls(frame, estimate)

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
        frame["outcome_state_dem_share"] = frame["state_po"].map(state_shares(state_returns, year))
    counts = {reason: count for reason, count in counts.items() if count}
    return ElectionFeatures(frame.reset_index(names="county_fips"), counts, estimate, weighting)


@dataclass(frozen=True)
class ElectionInputs:
    """The tidy tables features are built from, as the real_ingest assets make them."""

    county_returns: pd.DataFrame
    state_returns: pd.DataFrame
    polls: pd.DataFrame
    demographics: pd.DataFrame

    @classmethod
    def read(cls, directory: Path = SHIPPED_REAL_DATA_DIR) -> ElectionInputs:
        """Every source file in ``directory`` read and tidied (scripts and tests; the pipeline has its assets)."""

        def raw(name: str) -> pd.DataFrame:
            return read_source(name, directory)

        demographics = ("election_context", "ers_unemployment", "ers_education", "ers_population")
        return cls(
            county_returns=tidy_county_returns(raw("county_returns")).frame,
            state_returns=tidy_state_returns(raw("state_returns")).frame,
            polls=tidy_polls(raw("state_polls"), raw("polls_538"), raw("polls_2024")).frame,
            demographics=tidy_demographics(*(raw(name) for name in demographics)).frame,
        )

    def features(self, year: int, as_of: date | None = None) -> ElectionFeatures:
        return build_election_features(
            year, self.county_returns, self.state_returns, self.polls, self.demographics, as_of
        )

    def features_by_year(self) -> dict[int, pd.DataFrame]:
        return {year: self.features(year).frame for year in FEATURE_YEARS}
