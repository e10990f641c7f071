"""Print where a finished run left its results: ``python -m election_assets.summary``."""

from __future__ import annotations

import json
import sys

from election_assets.core.model_store import ModelStore, ModelStoreError
from election_assets.core.paths import drift_summary_path
from election_assets.settings import PipelineSettings

# MLflow 3's UI opens every experiment in its GenAI view unless the link asks for the model-training one (the choice
# is the browser's, not the experiment's): the summaries print links that ask for it.
MLFLOW_UI = "http://127.0.0.1:5000"


def mlflow_browsing(tracking_uri: str, experiment: str) -> list[str]:
    """How to open an experiment's runs in the MLflow UI, as summary lines."""
    from mlflow.tracking import MlflowClient  # ~4 s of imports: only when a summary is printed

    found = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    lines = [f"  browse it    : .venv/bin/mlflow ui --backend-store-uri {tracking_uri}"]
    if found is not None:
        lines.append(
            f"  then open    : {MLFLOW_UI}/#/experiments/{found.experiment_id}/runs?workflowType=machine_learning"
        )
    return lines


def render(settings: PipelineSettings) -> str:
    store = ModelStore(settings.model_store_dir)
    lines = []
    try:
        champion = store.load()
    except ModelStoreError as error:
        lines.append(f"Champion model : none ({error})")
    else:
        manifest = champion.manifest
        metrics = manifest.metrics
        lines += [
            f"Champion model : {champion.version} ({manifest.model_name}) in {champion.path}",
            f"  held-out     : accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}, "
            f"Brier {metrics['brier']:.4f}, log loss {metrics['log_loss']:.4f}",
        ]
        if manifest.bayes:
            lines.append(
                f"  Bayes-optimal accuracy {manifest.bayes.bayes_optimal_accuracy:.4f} "
                f"(gap {manifest.bayes.accuracy_gap_to_bayes * 100:+.2f} points)"
            )
        run = manifest.source_run
        lines.append(f"  MLflow       : {run.registered_model} version {run.registered_version} (alias champion)")
    lines.append(f"MLflow store   : {settings.mlflow_tracking_uri}")
    lines += mlflow_browsing(settings.mlflow_tracking_uri, settings.mlflow_experiment)
    drift = drift_summary_path(settings.reports_dir)
    if drift.is_file():
        summary = json.loads(drift.read_text())
        lines.append(
            f"Drift report   : {summary['report_html']} (drift share {summary['drift_share']:.2f}, "
            f"dataset drift {summary['dataset_drift']})"
        )
    lines.append(f"Predictions    : {settings.reports_dir / 'predictions' / 'batch_predictions.csv'}")
    lines.append("Dagster UI     : make ui, then open http://127.0.0.1:3000 (asset graph, runs, checks)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render(PipelineSettings.from_env()) + "\n")
