"""Election-night jobs. The prior of a year reads several ``election_features`` partitions, so it runs in a job of its
own after ``real_features`` (``make real`` materializes those); the replay score runs after ``make live-demo``."""

import dagster as dg

live_prior = dg.define_asset_job(
    "live_prior",
    selection=dg.AssetSelection.assets("election_night_prior"),
    description="The election-night prior of one year (data/live/prior_<year>.json), the file the live updater loads.",
)
live_replay_score = dg.define_asset_job(
    "live_replay_score",
    selection=dg.AssetSelection.assets("replay_score"),
    description="Score a finished replay (make live-demo YEAR=<year>) against the results; one MLflow run per year.",
)
