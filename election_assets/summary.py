"""Print where a finished run left its results: ``python -m election_assets.summary``."""

from __future__ import annotations

import json
import sys

from election_assets.core.model_store import ModelStore, ModelStoreError
from election_assets.core.paths import drift_summary_path
from election_assets.settings import PipelineSettings


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
    lines.append(f"  browse it    : .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}")
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
