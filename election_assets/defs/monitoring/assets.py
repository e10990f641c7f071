"""Monitoring: an Evidently data-drift report of the current batch against the data the served champion learnt from.

The reference is the champion's own held-out rows (``holdout.csv`` in its model-store version), drawn from the
same cleaned history as its training rows. Comparing with the latest cleaned history instead would hide drift
whenever a retraining ingested new data but did not promote its challenger: the old model keeps serving while
the report would measure the batch against data that model never saw.
"""

import json
import os
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from election_assets.core.model_store import HOLDOUT_FILE
from election_assets.core.schema import INPUT_FIELD_NAMES
from election_assets.defs.resources import ProjectStorage
from election_assets.settings import DRIFT_SHARE_THRESHOLD

DRIFT_CHECK = "no_dataset_drift"


class DriftConfig(dg.Config):
    drift_share_threshold: float = Field(
        DRIFT_SHARE_THRESHOLD,
        gt=0.0,
        le=1.0,
        description="Dataset drift when at least this share of input columns drifted",
    )
    reference_sample: int = Field(
        10_000,
        ge=100,
        description="At most this many of the champion's held-out rows (sampled, seeded) serve as the reference",
    )


def with_banner(html: str, text: str) -> str:
    """Evidently's page with a line above the report saying what was compared with what (its own page does not)."""
    banner = (
        '<div style="font: 14px sans-serif; padding: 10px 16px; background: #eef3fb; border-bottom: 1px solid #ccd">'
        f"{escape(text)}</div>"
    )
    head, body, rest = html.partition("<body>")
    return f"{head}{body}{banner}{rest}" if body else banner + html


def summarize_drift(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Read drift share and drifted columns from an Evidently 0.7 ``DataDriftPreset`` result."""
    drifted, scores = [], {}
    for metric in result["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        column, score = config["column"], float(metric["value"])
        scores[column] = {"method": config["method"], "score": score, "threshold": config["threshold"]}
        # p-value tests flag drift below the threshold; distance measures flag it at or above.
        is_p_value = "p_value" in config["method"]
        if (score < config["threshold"]) if is_p_value else (score >= config["threshold"]):
            drifted.append(column)
    share = len(drifted) / len(scores) if scores else 0.0
    return {
        "dataset_drift": share >= threshold,
        "drift_share": share,
        "drift_share_threshold": threshold,
        "drifted_columns": drifted,
        "column_scores": scores,
    }


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@dg.asset(
    group_name="monitoring",
    code_version="1",
    kinds={"evidently"},
    deps=["champion_model"],
    # Drift is checked every 6 hours: a report older than 12 hours means the check has stalled.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=12), warn_window=timedelta(hours=7)),
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK, asset="drift_report", description="Fails (as a warning) when the current batch has drifted"
        )
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    storage: ProjectStorage,
    cleaned_current_regions: pd.DataFrame,
):
    """Evidently ``DataDriftPreset`` over the 14 input fields of the current batch against the served champion's
    held-out rows: HTML and JSON reports plus a summary the API reads."""
    # Evidently takes ~10 s to import: only this asset pays for it.
    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = list(INPUT_FIELD_NAMES)
    champion = storage.load_champion(needed_for="to measure drift against")
    holdout = champion.path / HOLDOUT_FILE
    if not holdout.is_file():
        raise dg.Failure(f"champion {champion.version} has no {HOLDOUT_FILE}: retrain to publish one with it")
    reference = pd.read_csv(holdout, usecols=columns)[columns]
    if len(reference) > config.reference_sample:
        reference = reference.sample(config.reference_sample, random_state=0)
    current = cleaned_current_regions[columns]
    snapshot = Report([DataDriftPreset(drift_share=config.drift_share_threshold)]).run(
        current_data=current, reference_data=reference
    )
    generated_at = datetime.now(UTC)
    directory = storage.reports_path("drift", generated_at.strftime("%Y%m%dT%H%M%S%fZ"))
    html, raw_json = directory / "drift_report.html", directory / "drift_report.json"
    snapshot.save_html(str(html))
    comparison = (
        f"Current batch: {len(current)} cleaned regions (Dagster run {context.run.run_id}). "
        f"Reference: {len(reference)} held-out rows of champion {champion.version}, the data it learnt from."
    )
    html.write_text(with_banner(html.read_text(), comparison))
    snapshot.save_json(str(raw_json))
    summary = summarize_drift(snapshot.dict(), config.drift_share_threshold) | {
        "generated_at": generated_at.isoformat(),
        "dagster_run_id": context.run.run_id,
        "reference_rows": len(reference),
        "reference_model_version": champion.version,
        "current_rows": len(current),
        "report_html": str(html),
        "report_json": str(raw_json),
    }
    _write_atomically(storage.drift_summary_path(), json.dumps(summary, indent=2))
    context.log.info(
        f"drift share {summary['drift_share']:.2f} (threshold {config.drift_share_threshold}); "
        f"drifted: {summary['drifted_columns'] or 'none'}"
    )
    yield dg.MaterializeResult(
        metadata={
            "dataset_drift": summary["dataset_drift"],
            "drift_share": summary["drift_share"],
            "drifted_columns": summary["drifted_columns"],
            "drifted_column_count": len(summary["drifted_columns"]),
            "reference_model_version": champion.version,
            "reference_rows": len(reference),
            "report_html": dg.MetadataValue.path(str(html)),
            "report_json": dg.MetadataValue.path(str(raw_json)),
        }
    )
    yield dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not summary["dataset_drift"],
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(summary['drifted_columns'])} of {len(columns)} input columns drifted",
        metadata={"drift_share": summary["drift_share"], "drifted_columns": summary["drifted_columns"]},
    )
