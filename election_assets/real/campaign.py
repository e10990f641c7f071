"""The forecast of an election as of any day of its campaign, and its timeline day by day.

A day's forecast is the published model applied to the election's counties with the polls that ended before that
day (``features.with_polls``, the average weighed as the model's features were): county shares and win
probabilities, state probabilities and the electoral-vote distribution from the model's correlated errors
(``evaluation.simulate_states``), whose national and state parts are the polls' errors as far before the election
as the day is (``forecaster.PollNoiseCurve``). Only the polls and that horizon change from day to day, so the
timeline rebuilds nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO

import numpy as np
import pandas as pd

from election_assets.core.compiled_model import SwingModel
from election_assets.core.manifest import NoiseParts
from election_assets.core.model_store import StoredModel
from election_assets.core.real_features import REAL_MODEL_COLUMNS, normal_cdf
from election_assets.modelling.export import compile_forecaster
from election_assets.real.evaluation import TOTAL_ELECTORAL_VOTES, WINNING_ELECTORAL_VOTES, simulate_states
from election_assets.real.features import (
    NEXT_ELECTION,
    election_day,
    forecast_day,
    poll_errors,
    poll_estimate,
    with_polls,
)
from election_assets.real.forecaster import PollNoiseCurve, SwingForecaster
from election_assets.real.poll_average import PollEstimate, PollWeighting

# The campaign a user can pick a day of: from August to the day before the election.
CAMPAIGN_START = date(NEXT_ELECTION, 8, 1)
CAMPAIGN_END = forecast_day(NEXT_ELECTION)
INTERVAL_80 = (10, 90)
INTERVAL_90 = (5, 95)


def campaign_day_of(day: date) -> date:
    """The campaign day whose forecast a poll arriving on ``day`` changes: ``day`` clamped into the campaign."""
    return min(max(day, CAMPAIGN_START), CAMPAIGN_END)


def campaign_days(start: date = CAMPAIGN_START, end: date = CAMPAIGN_END) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


@dataclass(frozen=True)
class DayForecast:
    day: date
    counties: pd.DataFrame  # county_fips, county_name, state_po, year, p_candidate_a, dem_two_party_share
    states: pd.DataFrame  # indexed by state_po: year, p_candidate_a, dem_two_party_share
    electoral_votes: np.ndarray  # the Democratic candidate's electoral votes in each simulation
    polls: PollEstimate
    noise: NoiseParts  # the error parts the day's simulation drew

    @property
    def summary(self) -> dict[str, object]:
        votes = self.electoral_votes
        low80, median, high80 = np.percentile(votes, [INTERVAL_80[0], 50, INTERVAL_80[1]])
        low90, high90 = np.percentile(votes, list(INTERVAL_90))
        return {
            "as_of": self.day.isoformat(),
            "p_candidate_a_wins": float(np.mean(votes >= WINNING_ELECTORAL_VOTES)),
            "candidate_a_votes_median": float(median),
            "candidate_a_votes_80pct": [float(low80), float(high80)],
            "candidate_a_votes_90pct": [float(low90), float(high90)],
            "candidate_b_votes_median": float(TOTAL_ELECTORAL_VOTES - median),
            "polls_used": self.polls.polls_used,
            "national_swing_in_polls": self.polls.national_swing,
            "error_sd_national": self.noise.national,
            "error_sd_state": self.noise.state,
        }

    def distribution(self) -> pd.DataFrame:
        """One row per electoral-vote outcome that occurred in the simulations."""
        outcomes, simulations = np.unique(np.asarray(self.electoral_votes, dtype=int), return_counts=True)
        return pd.DataFrame(
            {
                "candidate_a_votes": outcomes,
                "candidate_b_votes": TOTAL_ELECTORAL_VOTES - outcomes,
                "simulations": simulations,
                "probability": simulations / simulations.sum(),
            }
        )


@dataclass(frozen=True)
class CampaignModel:
    """A compiled model as every day's forecast uses it: its noise parts for polled and unpolled states as of the day
    before the election, the poll weighting its election's features were built with, and that weighting's national
    and state errors by days before the election over the elections the model was trained through."""

    model: SwingModel
    noise: Mapping[str, NoiseParts]
    weighting: PollWeighting
    poll_noise: PollNoiseCurve

    @classmethod
    def published(cls, stored: StoredModel, polls: pd.DataFrame, state_returns: pd.DataFrame) -> CampaignModel:
        """The model of the real-mode store, with the poll weighting its manifest records."""
        weighting = PollWeighting.from_params(stored.manifest.hyperparameters)
        errors = poll_errors(polls, state_returns, weighting)
        curve = PollNoiseCurve.from_poll_errors(errors, stored.manifest.trained_through)
        return cls(stored.model, stored.manifest.noise, weighting, curve)

    @classmethod
    def of_forecaster(cls, forecaster: SwingForecaster) -> CampaignModel:
        """A forecaster compiled as ``real_champion_model`` publishes it (a backtest's, or one not yet published)."""
        weighting = forecaster.poll_weighting.chosen
        return cls(compile_forecaster(forecaster), forecaster.published_noise, weighting, forecaster.poll_noise)


def forecast_as_of(
    model: CampaignModel,
    counties: pd.DataFrame,
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
    day: date,
    year: int = NEXT_ELECTION,
) -> DayForecast:
    """``year``'s forecast made on ``day`` from the polls that ended before it. ``counties`` are the election's
    feature rows (``election_features``): a day further out gets the wider errors of its horizon, and the day before
    the election is exactly what the API computes."""
    estimate = poll_estimate(polls, state_returns, year, day, model.weighting)
    frame = with_polls(counties, estimate)
    columns = frame[list(REAL_MODEL_COLUMNS)].to_numpy(np.float64)
    share = model.model.predict_share(columns)
    days_before = (election_day(year) - day).days
    noise = model.noise
    day_noise = model.poll_noise.noise(noise["polled"], days_before) if estimate.has_polls else noise["unpolled"]
    simulation = simulate_states(frame, share, day_noise)
    county_table = pd.DataFrame(
        {
            "county_fips": frame["county_fips"],
            "county_name": frame["county_name"],
            "state_po": frame["state_po"],
            "year": year,
            "p_candidate_a": normal_cdf((share - 0.5) / day_noise.total),
            "dem_two_party_share": share,
        }
    )
    states = pd.concat([simulation.win_probability, simulation.expected_share], axis=1).rename_axis("state_po")
    states.insert(0, "year", year)
    return DayForecast(day, county_table, states, simulation.electoral_votes(year), estimate, day_noise)


def timeline(forecasts: Iterable[DayForecast]) -> pd.DataFrame:
    """One row per day: the Democratic candidate's win probability and electoral-vote median with its 80 % interval."""
    rows = []
    for forecast in forecasts:
        summary = forecast.summary
        low, high = summary["candidate_a_votes_80pct"]
        rows.append(
            {
                "day": forecast.day,
                "p_candidate_a_wins": summary["p_candidate_a_wins"],
                "candidate_a_votes_median": summary["candidate_a_votes_median"],
                "candidate_a_votes_low80": low,
                "candidate_a_votes_high80": high,
                "polls_used": summary["polls_used"],
                "national_swing_in_polls": summary["national_swing_in_polls"],
                "error_sd_national": summary["error_sd_national"],
                "error_sd_state": summary["error_sd_state"],
            }
        )
    return pd.DataFrame(rows)


def timeline_png(days: pd.DataFrame, title: str) -> bytes:
    """Win probability above; electoral-vote median with its 80 % interval below, 270 marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), dpi=100, sharex=True)
    day = pd.to_datetime(days["day"])
    top.plot(day, days["p_candidate_a_wins"], color="#2166ac")
    top.axhline(0.5, color="grey", linestyle=":")
    top.set(ylim=(0, 1), ylabel="P(Democrat wins)", title=title)
    bottom.fill_between(
        day, days["candidate_a_votes_low80"], days["candidate_a_votes_high80"], color="#92c5de", label="80 % interval"
    )
    bottom.plot(day, days["candidate_a_votes_median"], color="#2166ac", label="median")
    bottom.axhline(WINNING_ELECTORAL_VOTES, color="grey", linestyle=":", label=f"{WINNING_ELECTORAL_VOTES} to win")
    bottom.set(ylabel="Democratic electoral votes", ylim=(0, TOTAL_ELECTORAL_VOTES))
    bottom.legend(loc="lower left")
    figure.autofmt_xdate()
    buffer = BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
