"""Jobs over the asset graph. MLflow's parent run is closed by dagster-mlflow's hook when a job finishes."""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

election_pipeline = dg.define_asset_job(
    "election_pipeline",
    selection=dg.AssetSelection.all(),
    description="The whole graph: ingest, clean, features, candidates, champion, batch predictions, drift report.",
    hooks={end_mlflow_on_run_finished},
)
