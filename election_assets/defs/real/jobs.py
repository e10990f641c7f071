"""Real-mode jobs. Partitioned and unpartitioned assets cannot share a run, so the real graph is five jobs, run
in order by ``make real`` (``election_assets.real_mode``); from the UI, each partition can also be launched or
backfilled on its own."""

import dagster as dg

real_ingest = dg.define_asset_job(
    "real_ingest",
    selection=dg.AssetSelection.groups("real_ingest"),
    description="Read every shipped source file, check it, and build the tidy tables real mode joins on.",
)
real_features = dg.define_asset_job(
    "real_features",
    selection=dg.AssetSelection.assets("election_features"),
    description="County features for one election year, from what was known before election day.",
)
real_backtest = dg.define_asset_job(
    "real_backtest",
    selection=dg.AssetSelection.assets("walk_forward_backtest", "backtest_state_forecasts"),
    description="Train on the elections before one test year, forecast it, score it against the baselines.",
)
real_forecast = dg.define_asset_job(
    "real_forecast",
    selection=dg.AssetSelection.assets("backtest_summary", "real_champion_model", "campaign_timeline"),
    description="The backtest table, the real-mode model for the API, and the next election's campaign timeline.",
)
real_daily_forecast = dg.define_asset_job(
    "real_daily_forecast",
    selection=dg.AssetSelection.assets("next_election_forecast"),
    description="The next election as forecast on one day of the campaign (the last: the day before it), with maps.",
)
real_timeline = dg.define_asset_job(
    "real_timeline",
    selection=dg.AssetSelection.assets("campaign_timeline"),
    description="The next election's campaign timeline alone (the polls feed redraws it after new polls).",
)
