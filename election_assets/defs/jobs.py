"""Jobs over the asset graph: the whole graph, and the slices the schedules and the drift sensor run.

Jobs that train carry dagster-mlflow's hook, which closes the MLflow parent run when the Dagster run ends.
"""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from election_assets.defs.tags import RUN_TAG_PREFIX

# Real mode (real_ingest and the real-mode graph built on it) and election night (live, built on real mode) have
# jobs of their own; the main job stays synthetic.
SYNTHETIC = dg.AssetSelection.all() - dg.AssetSelection.groups("real_ingest", "real", "live")
TRAINING = dg.AssetSelection.assets("champion_model").upstream()
SCORING = dg.AssetSelection.assets("batch_predictions").upstream() - TRAINING
DRIFT_CHECK = dg.AssetSelection.assets("drift_report").upstream() - TRAINING
# Retraining refreshes the history, retrains, re-scores the current batch and re-measures drift against the
# champion it leaves in place, so one run closes the loop the drift report opened (or keeps it open when the
# challenger lost and the old model still serves).
RETRAINING = TRAINING | dg.AssetSelection.assets("batch_predictions", "drift_report")
# Jobs that may promote a champion; the production run queue lets one of them run at a time
# (instance/dagster.prod.yaml).
TRAINS_CHAMPION = {f"{RUN_TAG_PREFIX}trains_champion": "true"}

election_pipeline = dg.define_asset_job(
    "election_pipeline",
    selection=SYNTHETIC,
    description="The synthetic graph: ingest, clean, features, candidates, champion, batch predictions, drift report.",
    hooks={end_mlflow_on_run_finished},
    tags=TRAINS_CHAMPION,
)
training_job = dg.define_asset_job(
    "weekly_training",
    selection=TRAINING,
    description="Re-ingest the labelled history, retrain every candidate, and gate the champion.",
    hooks={end_mlflow_on_run_finished},
    tags=TRAINS_CHAMPION,
)
scoring_job = dg.define_asset_job(
    "daily_scoring", selection=SCORING, description="Ingest the current batch and score it with the champion."
)
drift_job = dg.define_asset_job(
    "drift_check", selection=DRIFT_CHECK, description="Ingest the current batch and compare it with the reference."
)
retraining_job = dg.define_asset_job(
    "retrain_on_drift",
    selection=RETRAINING,
    description="Started by the drift sensor: retrain, gate, re-score and re-measure drift.",
    hooks={end_mlflow_on_run_finished},
    tags=TRAINS_CHAMPION,
)
