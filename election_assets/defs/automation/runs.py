"""Runs whose process is gone are marked failed, so nothing waits on a run that will never finish.

Dagster marks a run failed when its process fails, not when the process is killed (kill -9, the out-of-memory
killer, a machine going down): such a run reads STARTED until the run monitor's maximum runtime, and only while a
daemon runs; a run executed in the CLI's own process (``make demo``) has no run worker for the monitor to check at
all. Every run of this code location records the process executing it (``defs/execution.py``), so a run whose
process has ended is failed here within a sensor tick, whether the CLI, the UI or a sensor started it. A run whose
process is on another host (a Kubernetes run pod) is left to the run monitor, which checks pods itself.
"""

from __future__ import annotations

import dagster as dg

from election_assets.defs.execution import recorded_process


def fail_runs_whose_process_is_gone(instance: dg.DagsterInstance) -> list[str]:
    """Mark every started run whose recorded process has ended as failed; returns their run ids."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        process = recorded_process(run.tags)
        if process is None or not process.is_gone():
            continue
        instance.report_run_failed(
            run,
            message=f"the process that ran it (pid {process.pid} on {process.host}) has ended without finishing it: "
            "it was killed",
        )
        failed.append(run.run_id)
    return failed


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks a started run failed once the process that ran it is gone (killed, out of memory).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = fail_runs_whose_process_is_gone(context.instance)
    if failed:
        context.log.warning(f"marked {len(failed)} run(s) whose process is gone as failed: {', '.join(failed)}")
    return dg.SkipReason(f"{len(failed)} dead run(s) marked failed" if failed else "no run has lost its process")
