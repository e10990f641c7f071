"""Walk-forward backtest: for each test year, train on the elections before it, forecast it, and score the
forecaster beside the two baselines on the same counties."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from election_assets.real.evaluation import (
    CALIBRATION_BINS,
    StateSimulation,
    calibration_table,
    score,
    score_states,
    simulate_states,
)
from election_assets.real.features import FINAL_FORECAST_DAYS_BEFORE, WeightingChoice, state_shares
from election_assets.real.forecaster import (
    RELATIVE_SWING_VARIANTS,
    SwingForecaster,
    VariantChoice,
    fit_forecaster,
    margin_logistic_probability,
    persistence_probability,
)
from election_assets.real.poll_average import DEFAULT_WEIGHTING

BACKTEST_YEARS: tuple[int, ...] = (2008, 2012, 2016, 2020)
FORECASTER = "swing_forecaster"
PERSISTENCE = "persistence"
MARGIN_LOGISTIC = "margin_logistic"
GAIN_RESAMPLES = 2000
GAIN_LEVEL = 0.95


def training_rows(features_by_year: Mapping[int, pd.DataFrame], before: int) -> pd.DataFrame:
    """Every labelled county-election before ``before``: the only rows a forecast of ``before`` may learn from, in
    year order whatever the mapping's order (Dagster hands partitions over in no set order, and the trees' row
    subsampling depends on the row order)."""
    frames = [
        frame for year, frame in sorted(features_by_year.items()) if year < before and "outcome_dem_share" in frame
    ]
    if not frames:
        raise ValueError(f"no labelled elections before {before} to train on")
    return pd.concat(frames, ignore_index=True)


def vote_weighted_gain(
    outcome: pd.DataFrame, probability: np.ndarray, baseline: np.ndarray, resamples: int = GAIN_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Vote-weighted accuracy of ``probability`` minus the baseline's on the same counties, with a bootstrap
    interval. Counties of one state share its poll error, so they are not independent draws: the state is the
    unit resampled. Keys: ``vw_gain`` and its ``vw_gain_low``, ``vw_gain_high`` (``GAIN_LEVEL`` interval) and
    ``vw_gain_se``, plus the ``votes`` counted, to pool years."""
    won = outcome["outcome_dem_win"].to_numpy() == 1
    votes = outcome["outcome_total_votes"].to_numpy(dtype=np.float64)
    gained = (((probability > 0.5) == won).astype(float) - ((baseline > 0.5) == won).astype(float)) * votes
    by_state = pd.DataFrame({"gained": gained, "votes": votes}).groupby(outcome["state_po"].to_numpy()).sum()
    draws = np.random.default_rng(seed).integers(0, len(by_state), size=(resamples, len(by_state)))
    resampled = by_state["gained"].to_numpy()[draws].sum(axis=1) / by_state["votes"].to_numpy()[draws].sum(axis=1)
    tail = (1.0 - GAIN_LEVEL) / 2.0
    return {
        "vw_gain": float(by_state["gained"].sum() / by_state["votes"].sum()),
        "vw_gain_low": float(np.quantile(resampled, tail)),
        "vw_gain_high": float(np.quantile(resampled, 1.0 - tail)),
        "vw_gain_se": float(resampled.std(ddof=1)),
        "votes": float(by_state["votes"].sum()),
    }


def pooled_vote_weighted_gain(scores_by_year: Mapping[int, pd.DataFrame], years: tuple[int, ...]) -> dict[str, float]:
    """The forecaster's vote-weighted gain over persistence on every vote of ``years`` together. The years are
    separate elections, so their bootstrap errors combine as independent ones (normal interval)."""
    rows = pd.DataFrame([scores_by_year[year].loc[FORECASTER] for year in years])
    weights = rows["votes"] / rows["votes"].sum()
    estimate = float((weights * rows["vw_gain"]).sum())
    error = float(np.sqrt((weights**2 * rows["vw_gain_se"] ** 2).sum()))
    z = NormalDist().inv_cdf(0.5 + GAIN_LEVEL / 2.0)
    return {"vw_gain": estimate, "vw_gain_low": estimate - z * error, "vw_gain_high": estimate + z * error}


@dataclass(frozen=True)
class YearBacktest:
    year: int
    training_years: tuple[int, ...]  # the elections the models learned from, all before ``year``
    scores: pd.DataFrame  # one row per model
    calibration: dict[str, pd.DataFrame]
    forecaster: SwingForecaster
    simulation: StateSimulation
    counties: pd.DataFrame  # the test rows with every model's probability and the forecast share

    def scores_for(self, model: str) -> dict[str, float]:
        return self.scores.loc[model].dropna().to_dict()

    def states(self, actual_share: pd.Series) -> pd.DataFrame:
        """One row per state: the forecaster's simulated win probability and expected share, and the result."""
        frame = pd.concat([self.simulation.win_probability, self.simulation.expected_share], axis=1)
        frame = frame.rename_axis("state_po").reset_index().assign(year=self.year)
        frame["outcome_dem_share"] = frame["state_po"].map(actual_share)
        frame["outcome_dem_win"] = (frame["outcome_dem_share"] > 0.5).astype(int)
        return frame


def backtest_year(
    features_by_year: Mapping[int, pd.DataFrame],
    year: int,
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
    days_before: int = FINAL_FORECAST_DAYS_BEFORE,
) -> YearBacktest:
    """Forecast ``year`` from earlier elections only, ``days_before`` days before it (``features_by_year[year]``
    must hold the features as of that day). ``polls`` and ``state_returns`` may hold every year: the forecaster
    reads those of its training elections only, and the actual state results of ``year`` only score the aggregated
    forecast."""
    train = training_rows(features_by_year, before=year)
    test = features_by_year[year]
    forecaster = fit_forecaster(train, polls, state_returns).days_before(days_before)
    actual = state_shares(state_returns, year)
    share = forecaster.predict_share(test)
    probabilities = {
        FORECASTER: forecaster.win_probability(test),
        PERSISTENCE: persistence_probability(train, test),
        MARGIN_LOGISTIC: margin_logistic_probability(train, test),
    }
    rows = {name: score(probability, test) for name, probability in probabilities.items()}
    rows[FORECASTER] |= score(probabilities[FORECASTER], test, share)
    rows[FORECASTER] |= vote_weighted_gain(test, probabilities[FORECASTER], probabilities[PERSISTENCE])
    simulation = simulate_states(test, share, forecaster.noise(test))
    rows[FORECASTER] |= score_states(simulation, actual)
    previous_winner = test.groupby("state_po")["state_prev_dem_share"].first()
    rows[PERSISTENCE] |= {
        "states_right": int(((previous_winner > 0.5) == (actual.reindex(previous_winner.index) > 0.5)).sum())
    }
    won = test["outcome_dem_win"].to_numpy()
    return YearBacktest(
        year=year,
        training_years=tuple(sorted(int(y) for y in train["year"].unique())),
        scores=pd.DataFrame.from_dict(rows, orient="index"),
        calibration={name: calibration_table(probability, won) for name, probability in probabilities.items()},
        forecaster=forecaster,
        simulation=simulation,
        counties=test.assign(
            **{f"p_{name}": probability for name, probability in probabilities.items()},
            forecast_dem_share=share,
        ),
    )


def _formatted(key: str, template: str) -> Callable[[pd.Series], str]:
    return lambda row: "" if key not in row or pd.isna(row[key]) else template.format(row[key])


def format_gain(gain: Mapping[str, float] | pd.Series) -> str:
    """A gain with its interval, as the table and the summaries print it: ``+0.006 [-0.014, +0.027]``."""
    return "{:+.3f} [{:+.3f}, {:+.3f}]".format(gain["vw_gain"], gain["vw_gain_low"], gain["vw_gain_high"])


def _gain_cell(row: pd.Series) -> str:
    return "" if "vw_gain" not in row or pd.isna(row["vw_gain"]) else format_gain(row)


_TABLE_COLUMNS: dict[str, Callable[[pd.Series], str]] = {
    "accuracy": _formatted("accuracy", "{:.3f}"),
    "vote-weighted acc.": _formatted("vote_weighted_accuracy", "{:.3f}"),
    f"vs persistence [{GAIN_LEVEL:.0%} CI]": _gain_cell,
    "Brier": _formatted("brier", "{:.4f}"),
    "log loss": _formatted("log_loss", "{:.4f}"),
    "share RMSE": _formatted("dem_share_rmse", "{:.4f}"),
    "states right": _formatted("states_right", "{:.0f}/51"),
    "state Brier": _formatted("state_brier", "{:.4f}"),
}


def backtest_markdown(scores_by_year: Mapping[int, pd.DataFrame]) -> str:
    """The backtest table (docs/generated/real_backtest.md): one row per year and model, from each year's
    ``YearBacktest.scores``."""
    header = ["year", "model", *_TABLE_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for year, scores in sorted(scores_by_year.items()):
        for model, row in scores.iterrows():
            cells = [cell(row) for cell in _TABLE_COLUMNS.values()]
            name = f"**{model}**" if model == FORECASTER else model
            lines.append("| " + " | ".join([str(year), name, *cells]) + " |")
    return "\n".join(lines)


def variant_choice_markdown(choices: Mapping[int, VariantChoice]) -> str:
    """Which relative swing each year's forecaster uses and why: every variant's county Brier score (and log loss)
    over the training elections it forecast from the ones before each."""
    variants = list(RELATIVE_SWING_VARIANTS)
    lines = [
        "| year | validated on | " + " | ".join(f"{name}: Brier (log loss)" for name in variants) + " | chosen |",
        "|" + "---|" * (len(variants) + 3),
    ]
    for year, choice in sorted(choices.items()):
        if choice.scores.empty:
            cells = ["" for _ in variants]
        else:
            cells = [f"{row['brier']:.4f} ({row['log_loss']:.4f})" for _, row in choice.scores.loc[variants].iterrows()]
        validated = ", ".join(map(str, choice.validated_on)) or "(one training election)"
        lines.append(f"| {year} | {validated} | " + " | ".join(cells) + f" | **{choice.chosen}** |")
    return "\n".join(lines)


def poll_weighting_markdown(choices: Mapping[int, WeightingChoice]) -> str:
    """Which poll weighting each year's forecast uses and why: the chosen weighting's error of the day-before state
    poll averages over the elections before it, beside the default's."""
    lines = [
        f"| year | validated on | chosen | its RMSE | default's RMSE ({DEFAULT_WEIGHTING.label}) |",
        "|---|---|---|---|---|",
    ]
    for year, choice in sorted(choices.items()):
        if not choice.validated_on:
            lines.append(f"| {year} | (no earlier election with polls) | **{choice.chosen.label}** | | |")
            continue
        validated = ", ".join(map(str, choice.validated_on))
        lines.append(
            f"| {year} | {validated} | **{choice.chosen.label}** | {choice.scores[choice.chosen]:.4f} | "
            f"{choice.scores[DEFAULT_WEIGHTING]:.4f} |"
        )
    return "\n".join(lines)


def beats_baselines(scores: pd.DataFrame) -> dict[str, bool]:
    """The acceptance rule of real mode for one year: better county Brier score and log loss than both baselines,
    and not significantly worse than persistence on vote-weighted accuracy (the upper end of the gain's interval
    above zero). Pooled over every backtest year the gain must not be negative (``pooled_vote_weighted_gain``)."""
    baselines = [PERSISTENCE, MARGIN_LOGISTIC]
    return {
        "brier": bool(all(scores.loc[FORECASTER, "brier"] < scores.loc[b, "brier"] for b in baselines)),
        "log_loss": bool(all(scores.loc[FORECASTER, "log_loss"] < scores.loc[b, "log_loss"] for b in baselines)),
        "vote_weighted_accuracy_not_significantly_worse": bool(scores.loc[FORECASTER, "vw_gain_high"] > 0),
    }


@dataclass(frozen=True)
class PublishedForecast:
    """A published final forecast's state-level score: Brier score over the 50 states and DC, and states called."""

    name: str
    state_brier: float
    states_right: int | None = None


# The best-known final forecasts of each backtest year. Sources: the README of TheEconomist/us-potus-model (its
# 2008-2016 backtest tables and the published 2012 and 2016 forecasts) and mickbransfield.com, "Who won the 2020
# model wars" (2020).
PUBLISHED_FORECASTS: dict[int, tuple[PublishedForecast, ...]] = {
    2008: (PublishedForecast("The Economist model (backtest)", 0.0290, 49),),
    2012: (PublishedForecast("FiveThirtyEight", 0.0091), PublishedForecast("Linzer", 0.0038)),
    2016: (
        PublishedForecast("FiveThirtyEight polls-plus", 0.0664, 46),
        PublishedForecast("The Economist model (backtest)", 0.0508, 48),
    ),
    2020: (PublishedForecast("FiveThirtyEight", 0.0359, 49), PublishedForecast("The Economist", 0.0368, 49)),
}


def published_comparison_markdown(scores_by_year: Mapping[int, pd.DataFrame]) -> str:
    """The forecaster's state-level Brier score and states called right beside the published forecasts."""
    lines = [
        "| year | this forecaster: state Brier | states right | published forecast | its state Brier | states right |",
        "|---|---|---|---|---|---|",
    ]
    for year, scores in sorted(scores_by_year.items()):
        ours = scores.loc[FORECASTER]
        for published in PUBLISHED_FORECASTS.get(year, ()):
            right = "" if published.states_right is None else f"{published.states_right}/51"
            lines.append(
                f"| {year} | {ours['state_brier']:.4f} | {int(ours['states_right'])}/51 | {published.name} | "
                f"{published.state_brier:.4f} | {right} |"
            )
    return "\n".join(lines)


def state_calibration(states: pd.DataFrame) -> pd.DataFrame:
    """The forecaster's state win probabilities against how often the Democrat carried those states, in equal-width
    bins with the number of states in each (``YearBacktest.states`` of several years, concatenated)."""
    return calibration_table(states["p_candidate_a"].to_numpy(), states["outcome_dem_win"].to_numpy())


def state_calibration_markdown(table: pd.DataFrame) -> str:
    lines = ["| forecast bin | mean forecast | observed | states |", "|---|---|---|---|"]
    for bin_index, row in table.iterrows():
        low = bin_index / CALIBRATION_BINS
        lines.append(
            f"| {low:.1f}-{low + 1 / CALIBRATION_BINS:.1f} | {row['forecast']:.3f} | {row['observed']:.3f} | "
            f"{int(row['count'])} |"
        )
    return "\n".join(lines)
