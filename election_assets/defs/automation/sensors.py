"""The drift sensor: a drift report whose drift share crosses the threshold requests one retraining run.

It reads the drift report's materialization metadata (not logs, not run status: a failed non-blocking check
does not fail a run). Its cursor records the last report it settled and the last one it acted on, so a
daemon restart neither loses nor repeats a trigger; run keys make a repeated request a no-op as well. It
never starts a retraining while any run that trains the champion (a retraining, the weekly training, the full
pipeline, a one-off materialization of the champion) is in flight, and waits out a cool-down.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace

import dagster as dg

from election_assets.core.model_store import ModelStoreError
from election_assets.defs.automation.runs import fail_runs_whose_process_is_gone
from election_assets.defs.jobs import TRAINS_CHAMPION, retraining_job
from election_assets.defs.resources import ProjectStorage, RetrainingPolicy
from election_assets.defs.tags import RUN_TAG_PREFIX

CHAMPION = dg.AssetKey("champion_model")
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class DriftObservation:
    report_id: int  # storage id of the drift report's materialization event
    drift_share: float
    drifted_columns: list[str]


@dataclass(frozen=True)
class SensorState:
    """The sensor's cursor."""

    last_settled_report: int | None = None  # evaluated to the end: below threshold, or acted on
    last_triggered_report: int | None = None
    last_triggered_at: float | None = None

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SensorState:
        return cls(**json.loads(cursor)) if cursor else cls()


@dataclass(frozen=True)
class Decision:
    request_run: bool
    reason: str
    state: SensorState


def decide(
    observation: DriftObservation | None,
    state: SensorState,
    retraining_in_flight: bool,
    now: float,
    threshold: float,
    cooldown_seconds: float,
) -> Decision:
    if observation is None:
        return Decision(False, "no drift report yet", state)
    if state.last_settled_report is not None and observation.report_id <= state.last_settled_report:
        return Decision(False, f"drift report {observation.report_id} already settled", state)
    if observation.drift_share < threshold:
        settled = replace(state, last_settled_report=observation.report_id)
        return Decision(False, f"drift share {observation.drift_share:.2f} is below {threshold:.2f}", settled)
    # From here on the report calls for retraining; leaving it unsettled means a later tick acts on it.
    if retraining_in_flight:
        return Decision(False, "a training run is in flight; will re-evaluate after it", state)
    if state.last_triggered_at is not None and now - state.last_triggered_at < cooldown_seconds:
        wait = cooldown_seconds - (now - state.last_triggered_at)
        return Decision(False, f"cool-down: {wait / 60:.0f} more minute(s) before the next retraining", state)
    triggered = SensorState(observation.report_id, observation.report_id, now)
    return Decision(True, f"drift share {observation.drift_share:.2f} >= {threshold:.2f}: retraining", triggered)


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> tuple[int, dict] | None:
    result = instance.fetch_materializations(dg.AssetKey(asset), limit=1)
    if not result.records:
        return None
    record = result.records[0]
    return record.storage_id, {k: v.value for k, v in record.asset_materialization.metadata.items()}


def latest_drift_observation(instance: dg.DagsterInstance) -> DriftObservation | None:
    latest = latest_metadata(instance, "drift_report")
    if latest is None:
        return None
    report_id, metadata = latest
    return DriftObservation(report_id, float(metadata["drift_share"]), list(metadata["drifted_columns"]))


def training_in_flight(instance: dg.DagsterInstance) -> bool:
    """Whether a run that trains the champion is queued or running.

    The jobs that train it carry the ``TRAINS_CHAMPION`` tag, and Dagster copies a job's tags onto every run of it
    (daemon, UI, CLI and ``execute_in_process`` alike), so the one tag covers them, including jobs added later;
    it is the same tag the production run queue limits to one run at a time. A one-off "Materialize" of
    ``champion_model`` from the UI or ``dagster asset materialize`` runs the implicit asset job, which has no tags;
    its run names the champion in its asset selection instead.
    """
    return any(
        TRAINS_CHAMPION.items() <= run.tags.items() or CHAMPION in (run.asset_selection or ())
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    )


def _history_config(instance: dg.DagsterInstance) -> dict:
    """The run config of ``raw_regions`` for a retraining run: where its fresh labelled history comes from.

    A file-fed history is re-ingested from the file the latest ``raw_regions`` was read from (its ``source``
    metadata), which the feed is expected to have updated with the new outcomes. A synthetic history is drawn
    from the regime the current batch came from, standing in for outcomes arriving from the field.
    """
    history = latest_metadata(instance, "raw_regions")
    if history is not None and history[1].get("source", "synthetic") != "synthetic":
        return {"ops": {"raw_regions": {"config": {"source_path": str(history[1]["source"])}}}}
    batch = latest_metadata(instance, "current_regions")
    if batch is None or batch[1].get("source") != "synthetic":
        return {}
    return {"ops": {"raw_regions": {"config": {"drift": float(batch[1]["drift"])}}}}


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a retraining run when the latest drift report's drift share crosses the threshold.",
)
def drift_retraining_sensor(
    context: dg.SensorEvaluationContext, storage: ProjectStorage, retraining_policy: RetrainingPolicy
):
    # A training run killed with its process would otherwise read "in flight" and hold retraining back.
    fail_runs_whose_process_is_gone(context.instance)
    observation = latest_drift_observation(context.instance)
    decision = decide(
        observation,
        SensorState.from_cursor(context.cursor),
        training_in_flight(context.instance),
        time.time(),
        retraining_policy.drift_share,
        retraining_policy.cooldown_seconds,
    )
    context.update_cursor(decision.state.to_cursor())
    if not decision.request_run:
        return dg.SkipReason(decision.reason)
    try:
        champion_before = storage.model_store().latest_version() or "none"
    except ModelStoreError:
        champion_before = "unreadable"
    context.log.info(decision.reason)
    return dg.RunRequest(
        run_key=f"drift-report-{observation.report_id}",
        run_config=_history_config(context.instance),
        tags={
            f"{RUN_TAG_PREFIX}trigger": "drift",
            f"{RUN_TAG_PREFIX}drift_report_id": str(observation.report_id),
            f"{RUN_TAG_PREFIX}drift_share": f"{observation.drift_share:.3f}",
            f"{RUN_TAG_PREFIX}drifted_columns": ",".join(observation.drifted_columns)[:200],
            f"{RUN_TAG_PREFIX}champion_before": champion_before,
        },
    )
