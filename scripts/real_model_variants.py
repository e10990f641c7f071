"""Real mode's relative-swing model beside the alternatives docs/real-mode.md discusses, on the shipped data.

    .venv/bin/python scripts/real_model_variants.py

For each backtest year it prints the vote-weighted accuracy and the share RMSE of the shipped gradient-boosted
trees, of a ridge regression on the same features and weights, and of no relative swing at all (every county moves
with its state's polls), beside persistence. Then, for each year from 2012 on, the walk-forward comparison of the
trees and the ridge *inside that year's training elections*: the only evidence a choice between them could use
without looking at the year itself.

Research, not pipeline: nothing here is published or served; the model the pipeline ships is
``election_assets.real.forecaster``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from election_assets.core.real_features import REAL_FEATURE_NAMES
from election_assets.real.backtest import BACKTEST_YEARS, training_rows
from election_assets.real.evaluation import score
from election_assets.real.features import ElectionInputs
from election_assets.real.forecaster import (
    fit_relative_swing,
    persistence_probability,
    predict_share,
    relative_swing_target,
    relative_swing_weight,
)


class NoRelativeSwing:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))


def fit_ridge(train: pd.DataFrame) -> Pipeline:
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    features = train[list(REAL_FEATURE_NAMES)]
    return model.fit(features, relative_swing_target(train), ridge__sample_weight=relative_swing_weight(train))


VARIANTS = {
    "trees (shipped)": fit_relative_swing,
    "ridge": fit_ridge,
    "no relative swing": lambda train: NoRelativeSwing(),
}


def backtest_rows(by_year: dict[int, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for year in BACKTEST_YEARS:
        train, test = training_rows(by_year, before=year), by_year[year]
        persistence = score(persistence_probability(train, test), test)["vote_weighted_accuracy"]
        for name, fit in VARIANTS.items():
            share = predict_share(fit(train), test)
            # Any spread symmetric around the forecast share calls the winner by the share itself.
            scores = score(share, test, share)
            rows.append(
                {
                    "year": year,
                    "relative swing": name,
                    "vote-weighted acc.": scores["vote_weighted_accuracy"],
                    "vs persistence": scores["vote_weighted_accuracy"] - persistence,
                    "share RMSE": scores["dem_share_rmse"],
                }
            )
    return pd.DataFrame(rows)


def walk_forward_inside_training(by_year: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Relative-swing RMSE (weighted as in training) of each training year forecast from the years before it."""
    rows = []
    for year in BACKTEST_YEARS:
        train = training_rows(by_year, before=year)
        years = sorted(train["year"].unique())
        if len(years) < 2:  # a single training election: nothing to walk forward on
            continue
        row: dict[str, object] = {"backtest year": year, "validated on": ", ".join(map(str, years[1:]))}
        for name in ("trees (shipped)", "ridge"):
            errors, weights = [], []
            for held_out in years[1:]:
                model = VARIANTS[name](train[train["year"] < held_out])
                test = train[train["year"] == held_out]
                errors.append(relative_swing_target(test).to_numpy() - model.predict(test[list(REAL_FEATURE_NAMES)]))
                weights.append(relative_swing_weight(test))
            row[name] = float(np.sqrt(np.average(np.concatenate(errors) ** 2, weights=np.concatenate(weights))))
        row["a walk-forward choice keeps"] = min(("trees (shipped)", "ridge"), key=lambda name: row[name])
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    by_year = ElectionInputs.read().features_by_year()
    pd.set_option("display.width", 160)
    print("Backtest, winner calls by the forecast share (vote-weighted accuracy minus persistence's):")
    print(backtest_rows(by_year).to_string(index=False, float_format="{:.4f}".format))
    print("\nRelative-swing RMSE inside each backtest year's training elections (walk forward):")
    print(walk_forward_inside_training(by_year).to_string(index=False, float_format="{:.4f}".format))


if __name__ == "__main__":
    main()
