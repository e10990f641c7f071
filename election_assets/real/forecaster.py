"""The real-mode model: each county's Democratic two-party share, as last time plus a state swing plus the county's
swing relative to its state.

- The state swing comes from the polls (``poll_average``: each state's polls as of the forecast day, shrunk
  towards the national swing the polls show where a state's polls are few). How the average weighs the polls is
  chosen by walk forward too: the weighting whose state averages missed the results least in the earlier elections
  with polls (``features.choose_poll_weighting``). Every election 2000-2024 has polls; a request without a poll
  estimate assumes no swing, and the unpolled noise below carries that uncertainty.
- The county's swing relative to its state is learnt from earlier elections (where a county sits against its
  state, how it moved last time, education, rurality, unemployment) by one of three variants: gradient-boosted
  trees, a ridge regression, or none at all (every county moves with its state). Which one is chosen by a walk
  forward inside the training elections: each training election after the first is forecast from the ones before
  it, and the variant with the lowest county Brier score over those forecasts wins (``choose_relative_swing``).
  The year being forecast plays no part in the choice.
- Win probabilities come from a Gaussian spread split into national, state and county parts, so that simulations
  of states and the electoral college share errors the way real elections do. The national and state parts are
  the poll average's own errors in every earlier election with polls (``features.poll_errors``: 2000 onwards), as
  far before the election as the forecast is made (``PollNoiseCurve``: polls miss by more in August than the day
  before); the county part is the chosen variant's walk-forward error of a county around its state.

Baselines, scored the same way: persistence (the previous share, with a spread fitted on earlier swings) and a
logistic regression on the previous margin only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor

from election_assets.core.manifest import NoiseParts
from election_assets.core.real_features import POLLED, REAL_FEATURE_NAMES, STATE_SWING, normal_cdf
from election_assets.real.evaluation import score
from election_assets.real.features import (
    FINAL_FORECAST_DAYS_BEFORE,
    WeightingChoice,
    choose_poll_weighting,
    poll_errors,
)

RELATIVE_SWING_PARAMS: dict[str, float | int] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "random_state": 0,
    "n_jobs": 2,
}
RIDGE_ALPHA = 1.0


def relative_swing_target(frame: pd.DataFrame) -> pd.Series:
    county_swing = frame["outcome_dem_share"] - frame["prev_dem_share"]
    return county_swing - (frame["outcome_state_dem_share"] - frame["state_prev_dem_share"])


def relative_swing_weight(frame: pd.DataFrame) -> np.ndarray:
    # Large counties decide the vote-weighted accuracy; the square root keeps small counties in the fit.
    return np.exp(frame["log_prev_votes"].to_numpy() / 2.0)


class NoRelativeSwing:
    """The variant without a relative swing: every county moves with its state's polls."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(features))


RelativeSwing = XGBRegressor | Pipeline | NoRelativeSwing


def fit_trees(train: pd.DataFrame) -> XGBRegressor:
    model = XGBRegressor(**RELATIVE_SWING_PARAMS)
    model.fit(train[list(REAL_FEATURE_NAMES)], relative_swing_target(train), sample_weight=relative_swing_weight(train))
    return model


def fit_ridge(train: pd.DataFrame) -> Pipeline:
    model = make_pipeline(StandardScaler(), Ridge(alpha=RIDGE_ALPHA))
    features = train[list(REAL_FEATURE_NAMES)]
    return model.fit(features, relative_swing_target(train), ridge__sample_weight=relative_swing_weight(train))


def fit_none(train: pd.DataFrame) -> NoRelativeSwing:
    return NoRelativeSwing()


RELATIVE_SWING_VARIANTS: dict[str, Callable[[pd.DataFrame], RelativeSwing]] = {
    "trees": fit_trees,
    "ridge": fit_ridge,
    "none": fit_none,
}
# With a single training election there is nothing to walk forward on; the trees were the model before the choice.
DEFAULT_VARIANT = "trees"
VARIANT_PARAMS: dict[str, dict[str, float | int]] = {
    "trees": RELATIVE_SWING_PARAMS,
    "ridge": {"alpha": RIDGE_ALPHA},
    "none": {},
}


def predict_share(model: RelativeSwing, frame: pd.DataFrame) -> np.ndarray:
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
    """A variant's errors on each training year it could have forecast from earlier years only: ``frame``
    (``year``, ``state_po``, ``residual``, ``weight``; indexed like the training rows) and how they were made.

    With a single training year there is nothing to walk forward on, so persistence's errors (how much counties
    moved between the elections seen) stand in: wider, as they should be with so little history.
    """

    frame: pd.DataFrame
    source: str


def walk_forward_residuals(train: pd.DataFrame, variant: str = DEFAULT_VARIANT) -> WalkForwardResiduals:
    years = sorted(train["year"].unique())
    if len(years) == 1:
        persistence = _residual_frame(train, train["prev_dem_share"].to_numpy())
        return WalkForwardResiduals(persistence, source=f"persistence residuals {years[0]}")
    fit = RELATIVE_SWING_VARIANTS[variant]
    residuals = [
        _residual_frame(test, predict_share(fit(train[train["year"] < year]), test))
        for year in years[1:]
        for test in [train[train["year"] == year]]
    ]
    validated = str(years[1]) if len(years) == 2 else f"{years[1]}-{years[-1]}"
    return WalkForwardResiduals(pd.concat(residuals), source=f"{variant} walk-forward residuals {validated}")


@dataclass(frozen=True)
class PollNoiseCurve:
    """The national and state parts of the poll average's error by days before the election (``table``: index
    ``days_before``, columns ``national``, ``state``, ``elections``), from the poll errors (``features.poll_errors``)
    of the elections through ``trained_through``.

    At each horizon the parts are ``NoiseModel.from_residuals`` of that horizon's errors. They never shrink further
    from the election: fewer elections have polls that early (the 2000, 2004 and 2020 files hold only the last three
    weeks), which can make a raw estimate dip, while what the polls know only grows as the day comes closer. A horizon
    without any poll error takes the nearer one's parts.
    """

    table: pd.DataFrame
    trained_through: int

    @classmethod
    def from_poll_errors(cls, poll_errors: pd.DataFrame, trained_through: int) -> PollNoiseCurve:
        known = poll_errors[poll_errors["year"] <= trained_through]
        if known.empty:
            raise ValueError(f"no poll errors of an election through {trained_through}")
        rows = {}
        for days, errors in known.groupby("days_before"):
            parts = NoiseModel.from_residuals(errors, source="")
            rows[int(days)] = {"national": parts.national, "state": parts.state, "elections": errors["year"].nunique()}
        table = pd.DataFrame.from_dict(rows, orient="index").sort_index().rename_axis("days_before")
        table[["national", "state"]] = table[["national", "state"]].cummax()
        return cls(table, trained_through)

    def parts(self, days_before: int) -> pd.Series:
        """``national``, ``state`` and ``elections`` at the first horizon at or beyond ``days_before`` (the last one
        beyond the table)."""
        at_or_beyond = self.table.index[self.table.index >= days_before]
        return self.table.loc[at_or_beyond[0] if len(at_or_beyond) else self.table.index[-1]]

    def noise(self, base: NoiseParts, days_before: int) -> NoiseParts:
        """``base`` (a forecaster's noise for the final forecast) with the national and state parts of the horizon."""
        if days_before <= FINAL_FORECAST_DAYS_BEFORE:
            return base
        parts = self.parts(days_before)
        return NoiseModel(
            national=float(parts["national"]),
            state=float(parts["state"]),
            county=base.county,
            source=f"{base.source}; national and state parts {days_before} days before",
        )


def noise_model(residuals: WalkForwardResiduals, curve: PollNoiseCurve) -> NoiseModel:
    """The noise of a forecast made the day before: the county part from a variant's walk-forward residuals, the
    national and state parts from the poll average's errors of the training elections, which reach further back
    than the county data."""
    parts = curve.parts(FINAL_FORECAST_DAYS_BEFORE)
    county = NoiseModel.from_residuals(residuals.frame, source="").county
    return NoiseModel(
        national=float(parts["national"]),
        state=float(parts["state"]),
        county=county,
        source=f"poll errors of {int(parts['elections'])} elections through {curve.trained_through} (national, "
        f"state); {residuals.source} (county)",
    )


@dataclass(frozen=True)
class VariantChoice:
    """The relative-swing variant a forecaster uses and the evidence for it: each variant's county Brier score and
    log loss over the training elections it could forecast from earlier ones (``scores``, one row per variant;
    empty when a single training election leaves nothing to validate on), and the chosen one's residuals."""

    chosen: str
    validated_on: tuple[int, ...]
    scores: pd.DataFrame
    residuals: WalkForwardResiduals

    @property
    def reason(self) -> str:
        if self.scores.empty:
            return f"{self.chosen}: the default (one training election, nothing to validate on)"
        best = self.scores.loc[self.chosen]
        return (
            f"{self.chosen}: lowest county Brier score ({best['brier']:.4f}) forecasting "
            f"{', '.join(map(str, self.validated_on))} from the elections before each"
        )


def choose_relative_swing(train: pd.DataFrame, curve: PollNoiseCurve) -> VariantChoice:
    """The walk-forward choice among ``RELATIVE_SWING_VARIANTS``: each variant's forecasts of the training elections
    after the first, from the elections before each, with the win probabilities its own noise model gives; the
    lowest county Brier score wins."""
    years = tuple(int(year) for year in sorted(train["year"].unique()))
    if len(years) == 1:
        residuals = walk_forward_residuals(train, DEFAULT_VARIANT)
        return VariantChoice(DEFAULT_VARIANT, (), pd.DataFrame(), residuals)
    rows, residuals_by_variant = {}, {}
    validated = train[train["year"] > years[0]]
    for variant in RELATIVE_SWING_VARIANTS:
        residuals = walk_forward_residuals(train, variant)
        share = validated["outcome_dem_share"].to_numpy() - residuals.frame.loc[validated.index, "residual"].to_numpy()
        sigma = noise_model(residuals, curve).total
        rows[variant] = score(normal_cdf((share - 0.5) / sigma), validated)
        residuals_by_variant[variant] = residuals
    scores = pd.DataFrame.from_dict(rows, orient="index")[["brier", "log_loss"]]
    chosen = str(scores["brier"].idxmin())
    return VariantChoice(chosen, years[1:], scores, residuals_by_variant[chosen])


def national_swing_spread(train: pd.DataFrame) -> float:
    """Root mean square of the vote-weighted national swing between the training elections and the ones before."""
    swing = (train["outcome_dem_share"] - train["prev_dem_share"]) * train["outcome_two_party_votes"]
    by_year = swing.groupby(train["year"]).sum() / train.groupby("year")["outcome_two_party_votes"].sum()
    return float(np.sqrt(np.mean(by_year**2)))


@dataclass(frozen=True)
class SwingForecaster:
    relative_swing: RelativeSwing
    variant: VariantChoice
    # The poll errors say how far polls miss. Without any poll the national swing itself is unknown, so its spread
    # between earlier elections replaces the national part when it is wider.
    polled_noise: NoiseModel
    unpolled_noise: NoiseModel
    poll_noise: PollNoiseCurve
    poll_weighting: WeightingChoice
    trained_through: int

    def noise(self, frame: pd.DataFrame) -> NoiseModel:
        return self.polled_noise if (frame[POLLED] > 0).any() else self.unpolled_noise

    @property
    def published_noise(self) -> dict[str, NoiseParts]:
        """The noise parts as the published model's manifest keeps them (``ModelManifest.noise``)."""
        return {"polled": self.polled_noise, "unpolled": self.unpolled_noise}

    def predict_share(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_share(self.relative_swing, frame)

    def win_probability(self, frame: pd.DataFrame) -> np.ndarray:
        sigma = np.where(frame[POLLED] > 0, self.polled_noise.total, self.unpolled_noise.total)
        return normal_cdf((self.predict_share(frame) - 0.5) / sigma)

    def days_before(self, days: int) -> SwingForecaster:
        """The same forecaster for a forecast made ``days`` days before the election: the polls' national and state
        errors of that horizon."""
        return replace(self, polled_noise=self.poll_noise.noise(self.polled_noise, days))


def fit_forecaster(train: pd.DataFrame, polls: pd.DataFrame, state_returns: pd.DataFrame) -> SwingForecaster:
    """The forecaster of ``train`` for a forecast made the day before the election: the relative-swing variant
    chosen by walk forward inside it, refitted on all of it, and the noise parts of the poll weighting chosen by walk
    forward (the one the features of the election it forecasts were built with). ``polls`` and ``state_returns``
    may hold any years; only those of the training elections are read."""
    trained_through = int(train["year"].max())
    weighting = choose_poll_weighting(polls, state_returns, before=trained_through + 1)
    curve = PollNoiseCurve.from_poll_errors(poll_errors(polls, state_returns, weighting.chosen), trained_through)
    choice = choose_relative_swing(train, curve)
    noise = noise_model(choice.residuals, curve)
    national = max(noise.national, national_swing_spread(train))
    return SwingForecaster(
        relative_swing=RELATIVE_SWING_VARIANTS[choice.chosen](train),
        variant=choice,
        polled_noise=noise,
        unpolled_noise=replace(noise, national=national, source=f"{noise.source}; national swing spread"),
        poll_noise=curve,
        poll_weighting=weighting,
        trained_through=trained_through,
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
