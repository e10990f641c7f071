"""Walk-forward backtest: for each test year, train on the elections before it, forecast it, and score the
forecaster beside the two baselines on the same counties."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from election_assets.real.evaluation import (
    StateSimulation,
    calibration_table,
    score,
    score_states,
    simulate_states,
)
from election_assets.real.forecaster import (
    SwingForecaster,
    fit_forecaster,
    margin_logistic_probability,
    persistence_probability,
)

BACKTEST_YEARS: tuple[int, ...] = (2008, 2012, 2016, 2020)
FORECASTER = "swing_forecaster"
PERSISTENCE = "persistence"
MARGIN_LOGISTIC = "margin_logistic"


def training_rows(features_by_year: Mapping[int, pd.DataFrame], before: int) -> pd.DataFrame:
    """Every labelled county-election before ``before``: the only rows a forecast of ``before`` may learn from."""
    frames = [frame for year, frame in features_by_year.items() if year < before and "outcome_dem_share" in frame]
    if not frames:
        raise ValueError(f"no labelled elections before {before} to train on")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class YearBacktest:
    year: int
    scores: pd.DataFrame  # one row per model
    calibration: dict[str, pd.DataFrame]
    forecaster: SwingForecaster
    simulation: StateSimulation
    counties: pd.DataFrame  # the test rows with every model's probability and the forecast share

    def scores_for(self, model: str) -> dict[str, float]:
        return self.scores.loc[model].dropna().to_dict()


def backtest_year(features_by_year: Mapping[int, pd.DataFrame], year: int, state_shares: pd.Series) -> YearBacktest:
    """Forecast ``year`` from earlier elections only. ``state_shares`` are the actual state results of ``year``,
    used only to score the aggregated forecast."""
    train = training_rows(features_by_year, before=year)
    test = features_by_year[year]
    forecaster = fit_forecaster(train)
    share = forecaster.predict_share(test)
    probabilities = {
        FORECASTER: forecaster.win_probability(test),
        PERSISTENCE: persistence_probability(train, test),
        MARGIN_LOGISTIC: margin_logistic_probability(train, test),
    }
    rows = {name: score(probability, test) for name, probability in probabilities.items()}
    rows[FORECASTER] |= score(probabilities[FORECASTER], test, share)
    simulation = simulate_states(test, share, forecaster.noise(test))
    rows[FORECASTER] |= score_states(simulation, state_shares)
    previous_winner = test.groupby("state_po")["state_prev_dem_share"].first()
    rows[PERSISTENCE] |= {
        "states_right": int(((previous_winner > 0.5) == (state_shares.reindex(previous_winner.index) > 0.5)).sum())
    }
    won = test["outcome_dem_win"].to_numpy()
    return YearBacktest(
        year=year,
        scores=pd.DataFrame.from_dict(rows, orient="index"),
        calibration={name: calibration_table(probability, won) for name, probability in probabilities.items()},
        forecaster=forecaster,
        simulation=simulation,
        counties=test.assign(
            **{f"p_{name}": probability for name, probability in probabilities.items()},
            forecast_dem_share=share,
        ),
    )


_TABLE_COLUMNS = {
    "accuracy": ("accuracy", "{:.3f}"),
    "vote_weighted_accuracy": ("vote-weighted acc.", "{:.3f}"),
    "brier": ("Brier", "{:.4f}"),
    "log_loss": ("log loss", "{:.4f}"),
    "dem_share_rmse": ("share RMSE", "{:.4f}"),
    "states_right": ("states right", "{:.0f}/51"),
    "state_brier": ("state Brier", "{:.4f}"),
}


def backtest_markdown(scores_by_year: Mapping[int, pd.DataFrame]) -> str:
    """The backtest table of the README: one row per year and model, from each year's ``YearBacktest.scores``."""
    header = ["year", "model", *(label for label, _ in _TABLE_COLUMNS.values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for year, scores in sorted(scores_by_year.items()):
        for model, row in scores.iterrows():
            cells = [
                "" if key not in row or pd.isna(row[key]) else fmt.format(row[key])
                for key, (_, fmt) in _TABLE_COLUMNS.items()
            ]
            name = f"**{model}**" if model == FORECASTER else model
            lines.append("| " + " | ".join([str(year), name, *cells]) + " |")
    return "\n".join(lines)


def beats_baselines(scores: pd.DataFrame) -> dict[str, bool]:
    """The acceptance rule of real mode: better Brier and log loss than both baselines, and no worse than
    persistence on vote-weighted accuracy."""
    baselines = [PERSISTENCE, MARGIN_LOGISTIC]
    return {
        "brier": bool(all(scores.loc[FORECASTER, "brier"] < scores.loc[b, "brier"] for b in baselines)),
        "log_loss": bool(all(scores.loc[FORECASTER, "log_loss"] < scores.loc[b, "log_loss"] for b in baselines)),
        "vote_weighted_accuracy": bool(
            scores.loc[FORECASTER, "vote_weighted_accuracy"] >= scores.loc[PERSISTENCE, "vote_weighted_accuracy"]
        ),
    }
