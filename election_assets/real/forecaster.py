"""The real-mode model: each county's Democratic two-party share, as last time plus a state swing plus the county's
swing relative to its state.

- The state swing comes from the polls (``poll_average``: each state's polls as of the forecast day, shrunk
  towards the national swing the polls show where a state's polls are few). Every election 2000-2024 has polls;
  a request without a poll estimate assumes no swing, and the unpolled noise below carries that uncertainty.
- The county's swing relative to its state is learnt by gradient-boosted trees from earlier elections: where
  a county sits against its state, how it moved last time, education, rurality, unemployment.
- Win probabilities come from a Gaussian spread fitted on out-of-sample residuals of earlier elections (walk
  forward inside the training years), split into national, state and county parts so that simulations of
  states and the electoral college share errors the way real elections do.

Baselines, scored the same way: persistence (the previous share, with a spread fitted on earlier swings) and a
logistic regression on the previous margin only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from xgboost import XGBRegressor

from election_assets.core.manifest import NoiseParts
from election_assets.core.real_features import POLLED, REAL_FEATURE_NAMES, STATE_SWING, normal_cdf

RELATIVE_SWING_PARAMS: dict[str, float | int] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "random_state": 0,
    "n_jobs": 2,
}


def relative_swing_target(frame: pd.DataFrame) -> pd.Series:
    county_swing = frame["outcome_dem_share"] - frame["prev_dem_share"]
    return county_swing - (frame["outcome_state_dem_share"] - frame["state_prev_dem_share"])


def relative_swing_weight(frame: pd.DataFrame) -> np.ndarray:
    # Large counties decide the vote-weighted accuracy; the square root keeps small counties in the fit.
    return np.exp(frame["log_prev_votes"].to_numpy() / 2.0)


def fit_relative_swing(train: pd.DataFrame) -> XGBRegressor:
    model = XGBRegressor(**RELATIVE_SWING_PARAMS)
    model.fit(train[list(REAL_FEATURE_NAMES)], relative_swing_target(train), sample_weight=relative_swing_weight(train))
    return model


def predict_share(model: XGBRegressor, frame: pd.DataFrame) -> np.ndarray:
    relative = model.predict(frame[list(REAL_FEATURE_NAMES)])
    share = frame["prev_dem_share"].to_numpy() + frame[STATE_SWING].to_numpy() + relative
    return np.clip(share, 0.0, 1.0)


@dataclass(frozen=True)
class NoiseModel(NoiseParts):
    """The manifest's noise parts (national, state, county), estimated from a forecaster's residuals."""

    @classmethod
    def from_residuals(cls, residuals: pd.DataFrame, source: str) -> NoiseModel:
        """Split ``residual`` (observed minus forecast share, columns ``year``, ``state_po``, ``weight``) into the
        year-wide mean, the state's mean around it, and the rest."""
        weighted = residuals.assign(weighted=residuals["residual"] * residuals["weight"])

        def weighted_mean(keys: list[str]) -> pd.Series:
            sums = weighted.groupby(keys)[["weighted", "weight"]].sum()
            return sums["weighted"] / sums["weight"]

        national = weighted_mean(["year"])
        by_state = weighted_mean(["year", "state_po"])
        state = by_state - national.reindex(by_state.index.get_level_values("year")).to_numpy()
        county = (
            residuals["residual"].to_numpy()
            - by_state.reindex(pd.MultiIndex.from_frame(residuals[["year", "state_po"]])).to_numpy()
        )
        return cls(
            national=float(np.sqrt(np.mean(national**2))),
            state=float(np.sqrt(np.mean(state**2))),
            county=float(np.std(county)),
            source=source,
        )


def _residual_frame(frame: pd.DataFrame, forecast: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": frame["year"].to_numpy(),
            "state_po": frame["state_po"].to_numpy(),
            "residual": frame["outcome_dem_share"].to_numpy() - forecast,
            "weight": frame["outcome_two_party_votes"].to_numpy(),
        },
        index=frame.index,
    )


@dataclass(frozen=True)
class WalkForwardResiduals:
    """The forecaster's errors on each training year it could have forecast from earlier years only: ``frame``
    (``year``, ``state_po``, ``residual``, ``weight``; indexed like the training rows) and how they were made.

    With a single training year there is nothing to walk forward on, so persistence's errors (how much counties
    moved between the elections seen) stand in: wider, as they should be with so little history.
    """

    frame: pd.DataFrame
    source: str


def walk_forward_residuals(train: pd.DataFrame) -> WalkForwardResiduals:
    years = sorted(train["year"].unique())
    if len(years) == 1:
        persistence = _residual_frame(train, train["prev_dem_share"].to_numpy())
        return WalkForwardResiduals(persistence, source=f"persistence residuals {years[0]}")
    residuals = [
        _residual_frame(test, predict_share(fit_relative_swing(train[train["year"] < year]), test))
        for year in years[1:]
        for test in [train[train["year"] == year]]
    ]
    return WalkForwardResiduals(pd.concat(residuals), source=f"walk-forward residuals {years[1]}-{years[-1]}")


def national_swing_spread(train: pd.DataFrame) -> float:
    """Root mean square of the vote-weighted national swing between the training elections and the ones before."""
    swing = (train["outcome_dem_share"] - train["prev_dem_share"]) * train["outcome_two_party_votes"]
    by_year = swing.groupby(train["year"]).sum() / train.groupby("year")["outcome_two_party_votes"].sum()
    return float(np.sqrt(np.mean(by_year**2)))


@dataclass(frozen=True)
class SwingForecaster:
    relative_swing: XGBRegressor
    # The walk-forward residuals come from years with polls, whose national error is small. Without any poll the
    # national swing itself is unknown, so its spread between earlier elections replaces the national part.
    polled_noise: NoiseModel
    unpolled_noise: NoiseModel
    trained_through: int

    def noise(self, frame: pd.DataFrame) -> NoiseModel:
        return self.polled_noise if (frame[POLLED] > 0).any() else self.unpolled_noise

    def predict_share(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_share(self.relative_swing, frame)

    def win_probability(self, frame: pd.DataFrame) -> np.ndarray:
        sigma = np.where(frame[POLLED] > 0, self.polled_noise.total, self.unpolled_noise.total)
        return normal_cdf((self.predict_share(frame) - 0.5) / sigma)


def fit_forecaster(train: pd.DataFrame, residuals: WalkForwardResiduals | None = None) -> SwingForecaster:
    """The forecaster of ``train``; ``residuals``, when the caller has them, are ``walk_forward_residuals(train)``
    (the election-night prior uses them too, and they cost a fit per training year)."""
    residuals = residuals or walk_forward_residuals(train)
    noise = NoiseModel.from_residuals(residuals.frame, source=residuals.source)
    national = max(noise.national, national_swing_spread(train))
    return SwingForecaster(
        relative_swing=fit_relative_swing(train),
        polled_noise=noise,
        unpolled_noise=replace(noise, national=national, source=f"{noise.source}; national swing spread"),
        trained_through=int(train["year"].max()),
    )


def persistence_probability(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The previous share carried forward; its spread is how much counties moved between earlier elections."""
    spread = float((train["outcome_dem_share"] - train["prev_dem_share"]).std())
    return normal_cdf((test["prev_dem_share"].to_numpy() - 0.5) / spread)


def margin_logistic_probability(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """A logistic regression on the previous margin only, fitted on every earlier pair of elections."""

    def margin(frame: pd.DataFrame) -> np.ndarray:
        return (2.0 * frame["prev_dem_share"].to_numpy() - 1.0)[:, None]

    model = LogisticRegression().fit(margin(train), train["outcome_dem_win"].to_numpy())
    return model.predict_proba(margin(test))[:, 1]
