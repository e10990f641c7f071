"""Scoring county forecasts, and turning them into states and electoral votes by simulation."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import numpy as np
import pandas as pd

from election_assets.core.manifest import NoiseParts

_PROBABILITY_FLOOR = 1e-6

# Electoral votes by apportionment (census 2000: 2004-2008; 2010: 2012-2020; 2020: 2024-2028). Maine and Nebraska
# split some votes by district; the simulation gives each state's votes to its state-wide winner.
_EV_2010 = {
    "AL": 9, "AK": 3, "AZ": 11, "AR": 6, "CA": 55, "CO": 9, "CT": 7, "DE": 3, "DC": 3, "FL": 29, "GA": 16,
    "HI": 4, "ID": 4, "IL": 20, "IN": 11, "IA": 6, "KS": 6, "KY": 8, "LA": 8, "ME": 4, "MD": 10, "MA": 11,
    "MI": 16, "MN": 10, "MS": 6, "MO": 10, "MT": 3, "NE": 5, "NV": 6, "NH": 4, "NJ": 14, "NM": 5, "NY": 29,
    "NC": 15, "ND": 3, "OH": 18, "OK": 7, "OR": 7, "PA": 20, "RI": 4, "SC": 9, "SD": 3, "TN": 11, "TX": 38,
    "UT": 6, "VT": 3, "VA": 13, "WA": 12, "WV": 5, "WI": 10, "WY": 3,
}  # fmt: skip
_EV_2000 = _EV_2010 | {
    "AZ": 10, "FL": 27, "GA": 15, "IL": 21, "IA": 7, "LA": 9, "MA": 12, "MI": 17, "MO": 11, "NV": 5, "NJ": 15,
    "NY": 31, "OH": 20, "PA": 21, "SC": 8, "TX": 34, "UT": 5, "WA": 11,
}  # fmt: skip
_EV_2020 = _EV_2010 | {
    "CA": 54, "CO": 10, "FL": 30, "IL": 19, "MI": 15, "MT": 4, "NY": 28, "NC": 16, "OH": 17, "OR": 8, "PA": 19,
    "TX": 40, "WV": 4,
}  # fmt: skip
TOTAL_ELECTORAL_VOTES = 538
WINNING_ELECTORAL_VOTES = 270


def electoral_votes(year: int) -> dict[str, int]:
    table = _EV_2000 if year < 2012 else _EV_2010 if year < 2024 else _EV_2020
    assert sum(table.values()) == TOTAL_ELECTORAL_VOTES, "an apportionment table does not add up to 538"
    return table


def score(probability: np.ndarray, outcome: pd.DataFrame, share: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy (by count and weighted by votes), Brier, log loss, and the RMSE of the share when predicted."""
    won = outcome["outcome_dem_win"].to_numpy()
    votes = outcome["outcome_total_votes"].to_numpy()
    correct = (probability > 0.5) == (won == 1)
    clipped = np.clip(probability, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    scores = {
        "accuracy": float(correct.mean()),
        "vote_weighted_accuracy": float((correct * votes).sum() / votes.sum()),
        "brier": float(np.mean((probability - won) ** 2)),
        "log_loss": float(-np.mean(won * np.log(clipped) + (1 - won) * np.log(1 - clipped))),
    }
    if share is not None:
        scores["dem_share_rmse"] = float(np.sqrt(np.mean((share - outcome["outcome_dem_share"].to_numpy()) ** 2)))
    return scores


CALIBRATION_BINS = 10


def calibration_table(probability: np.ndarray, won: np.ndarray) -> pd.DataFrame:
    """Mean forecast, observed frequency and number of units (``count``) in equal-width probability bins."""
    bins = CALIBRATION_BINS
    bin_index = np.minimum((probability * bins).astype(int), bins - 1)
    table = pd.DataFrame({"bin": bin_index, "forecast": probability, "observed": won})
    return table.groupby("bin").agg(
        forecast=("forecast", "mean"), observed=("observed", "mean"), count=("observed", "size")
    )


def calibration_png(curves: dict[str, pd.DataFrame], title: str, unit: str = "county") -> bytes:
    """Reliability curves above, and below them how many units (counties, or states) each bin holds (a point resting
    on a handful of them says little), one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (axes, counts) = plt.subplots(
        2, 1, figsize=(5.5, 7), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    width = 1 / CALIBRATION_BINS / (len(curves) + 1)
    for offset, (name, table) in enumerate(curves.items()):
        (line,) = axes.plot(table["forecast"], table["observed"], marker="o", label=name)
        centres = (table.index.to_numpy() + 0.5) / CALIBRATION_BINS + (offset - (len(curves) - 1) / 2) * width
        bars = counts.bar(centres, table["count"], width=width, color=line.get_color())
        counts.bar_label(bars, fontsize=6, rotation=90, padding=2)
    axes.set(ylabel="observed frequency", title=title)
    axes.legend(loc="upper left")
    counts.set(xlabel=f"forecast P(Democrat carries {unit})", ylabel="per bin", yscale="log", xlim=(0, 1))
    counts.set_ylim(bottom=1, top=counts.get_ylim()[1] * 8)  # room for the labels above the tallest bar
    buffer = BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


@dataclass(frozen=True)
class StateSimulation:
    """Simulated Democratic two-party shares of each state (one column per state, one row per draw)."""

    shares: pd.DataFrame
    expected_share: pd.Series

    @property
    def win_probability(self) -> pd.Series:
        return (self.shares > 0.5).mean().rename("p_candidate_a")

    def electoral_votes(self, year: int) -> np.ndarray:
        table = electoral_votes(year)
        votes = np.array([table[state] for state in self.shares.columns])
        return (self.shares.to_numpy() > 0.5) @ votes


def simulate_states(
    frame: pd.DataFrame, share: np.ndarray, noise: NoiseParts, draws: int = 20_000, seed: int = 0
) -> StateSimulation:
    """Correlated outcomes: one national error per draw, one error per state, and county errors, which average
    inside a state with the weights of its counties (previous turnout), so they are drawn at state level exactly.
    """
    weight = np.exp(frame["log_prev_votes"].to_numpy())
    counties = pd.DataFrame({"state_po": frame["state_po"].to_numpy(), "weight": weight, "weighted": weight * share})
    by_state = counties.groupby("state_po").agg(
        weight=("weight", "sum"), weighted=("weighted", "sum"), weight_sq=("weight", lambda w: float((w**2).sum()))
    )
    expected = by_state["weighted"] / by_state["weight"]
    county_part = noise.county * np.sqrt(by_state["weight_sq"]) / by_state["weight"]
    rng = np.random.default_rng(seed)
    n_states = len(by_state)
    errors = (
        rng.normal(0.0, noise.national, size=(draws, 1))
        + rng.normal(0.0, noise.state, size=(draws, n_states))
        + rng.normal(0.0, 1.0, size=(draws, n_states)) * county_part.to_numpy()
    )
    shares = pd.DataFrame(expected.to_numpy() + errors, columns=by_state.index)
    return StateSimulation(shares=shares, expected_share=expected.rename("dem_two_party_share"))


def score_states(simulation: StateSimulation, actual_share: pd.Series) -> dict[str, float]:
    """How many states the aggregated county forecast calls right, and the state-level Brier score."""
    probability = simulation.win_probability
    won = (actual_share.reindex(probability.index) > 0.5).astype(int)
    return {
        "states_right": int(((probability > 0.5) == (won == 1)).sum()),
        "states": len(probability),
        "state_brier": float(np.mean((probability - won) ** 2)),
    }
