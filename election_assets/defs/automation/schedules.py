"""The three schedules of the loop. The daemon (``make ui`` runs one) starts them; they are on by default."""

import dagster as dg

from election_assets.defs.jobs import drift_job, scoring_job, training_job
from election_assets.settings import Cadence


@dg.definitions
def schedules() -> dg.Definitions:
    cadence = Cadence.from_env()
    return dg.Definitions(
        schedules=[
            dg.ScheduleDefinition(
                name=f"{job.name}_schedule",
                job=job,
                cron_schedule=cron,
                execution_timezone=cadence.timezone,
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
            for job, cron in (
                (training_job, cadence.training_cron),
                (scoring_job, cadence.scoring_cron),
                (drift_job, cadence.drift_cron),
            )
        ]
    )
