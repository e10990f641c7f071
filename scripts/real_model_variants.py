"""Real mode's relative-swing variants side by side on the shipped data.

    .venv/bin/python scripts/real_model_variants.py

The pipeline chooses among the variants of ``election_assets.real.forecaster.RELATIVE_SWING_VARIANTS`` (trees,
ridge, none) by a walk forward inside each backtest year's training elections, on the county Brier score
(``choose_relative_swing``). This script prints, for the record, what each variant would have given in each test
year (vote-weighted accuracy and share RMSE beside persistence: never used to choose), and the walk-forward
comparison on another criterion, the relative-swing RMSE, which would choose differently.

Research, not pipeline: nothing here is published or served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from election_assets.core.real_features import REAL_FEATURE_NAMES
from election_assets.real.backtest import BACKTEST_YEARS, training_rows
from election_assets.real.evaluation import score
from election_assets.real.features import ElectionInputs
from election_assets.real.forecaster import (
    RELATIVE_SWING_VARIANTS,
    persistence_probability,
    predict_share,
    relative_swing_target,
    relative_swing_weight,
)


def backtest_rows(by_year: dict[int, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for year in BACKTEST_YEARS:
        train, test = training_rows(by_year, before=year), by_year[year]
        persistence = score(persistence_probability(train, test), test)["vote_weighted_accuracy"]
        for name, fit in RELATIVE_SWING_VARIANTS.items():
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
        for name in RELATIVE_SWING_VARIANTS:
            errors, weights = [], []
            for held_out in years[1:]:
                model = RELATIVE_SWING_VARIANTS[name](train[train["year"] < held_out])
                test = train[train["year"] == held_out]
                errors.append(relative_swing_target(test).to_numpy() - model.predict(test[list(REAL_FEATURE_NAMES)]))
                weights.append(relative_swing_weight(test))
            row[name] = float(np.sqrt(np.average(np.concatenate(errors) ** 2, weights=np.concatenate(weights))))
        row["lowest RMSE"] = min(RELATIVE_SWING_VARIANTS, key=lambda name: row[name])
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
