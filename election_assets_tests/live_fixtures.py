"""A small election-night prior over a few states' real counties, for the live tests (estimate, updater, page)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from election_assets.core.manifest import NoiseParts
from election_assets.live.prior import ElectionNightPrior, new_manifest
from election_assets.real.evaluation import electoral_votes


def small_prior(returns: pd.DataFrame, year: int) -> ElectionNightPrior:
    """Each county of ``returns``' states with its share four years before as its forecast and those votes as its
    expected votes; a realignment along the county's size."""
    before = returns[returns["year"] == year - 4].sort_values("county_fips")
    shares = (before["dem_votes"] / (before["dem_votes"] + before["rep_votes"])).to_numpy()
    log_votes = np.log(before["total_votes"].to_numpy(dtype=float))
    states = sorted(set(before["state_po"]))
    return ElectionNightPrior(
        manifest=new_manifest(year, f"{year - 4} shares (test)", year - 4),
        noise=NoiseParts(national=0.02, state=0.03, county=0.03, source="test"),
        electoral_votes={state: electoral_votes(year)[state] for state in states},
        county_fips=tuple(before["county_fips"]),
        state_po=tuple(before["state_po"]),
        county_name=tuple(before["county_name"]),
        expected_dem_share=shares,
        expected_votes=before["total_votes"].to_numpy(dtype=float),
        county_sd=np.full(len(before), 0.03),
        covariate_names=("log_prev_votes",),
        covariates=((log_votes - log_votes.mean()) / log_votes.std())[:, None],
        realignment_sd=np.array([0.01]),
    )
