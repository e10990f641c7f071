"""The polls feed: a CSV of polls dropped in the inbox is ingested and re-forecasts the campaign, once per content.

``polls_inbox_sensor`` hashes every CSV of the inbox (``ELECTION_POLLS_INBOX``, the ``storage`` resource's
``polls_inbox_dir``) and requests one ``polls_inbox_ingest`` run (``raw_polls_inbox``, ``polls`` and their blocking
checks) per content it has not settled yet, with the run key ``polls-inbox-<sha256>``: its cursor keeps the hashes
it requested, so a daemon restart neither loses nor repeats a file, and a renamed copy of a file does not run again.
Partitioned and unpartitioned assets cannot share a run, so ``polls_inbox_forecast_sensor`` chains the rest: when
an ingest run succeeds it requests ``real_daily_forecast`` for the day the file arrived (``campaign_day_of``: today,
clamped into the campaign) and ``real_timeline``, with run keys from the ingest run's id. A file that fails its
check fails the ingest run, which requests nothing: no forecast changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from election_assets.defs.real.jobs import real_daily_forecast, real_timeline
from election_assets.defs.resources import ProjectStorage
from election_assets.defs.tags import RUN_TAG_PREFIX
from election_assets.real.campaign import campaign_day_of
from election_assets.real.polls import inbox_files

FILE_TAG = f"{RUN_TAG_PREFIX}polls_inbox_file"
HASH_TAG = f"{RUN_TAG_PREFIX}polls_inbox_sha256"
DAY_TAG = f"{RUN_TAG_PREFIX}forecast_day"
# Hashes the cursor remembers besides those of the files in the inbox (which it always keeps): enough that a file
# removed and dropped again later does not re-run, bounded so the cursor stays small. Run keys are a second guard.
REMEMBERED_HASHES = 1000
# A file changed less than this long ago may still be being copied: it waits for the next tick.
SETTLE_SECONDS = 2.0

polls_inbox_ingest = dg.define_asset_job(
    "polls_inbox_ingest",
    selection=dg.AssetSelection.assets("raw_polls_inbox", "polls"),
    description="Read the polls inbox, check every file, rebuild the tidy poll table (run by the polls feed).",
)


def today() -> date:
    """The date the sensors call today (tests replace it)."""
    return date.today()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class InboxState:
    """The inbox sensor's cursor: the contents (sha256) it has requested an ingest run for, oldest first."""

    requested: list[str] = field(default_factory=list)

    def to_cursor(self) -> str:
        return json.dumps({"requested": self.requested})

    @classmethod
    def from_cursor(cls, cursor: str | None) -> InboxState:
        return cls(list(json.loads(cursor)["requested"])) if cursor else cls()


@dataclass(frozen=True)
class NewFile:
    path: Path
    sha256: str


def new_files(
    directory: str | Path, state: InboxState, now: float, settle_seconds: float = SETTLE_SECONDS
) -> tuple[list[NewFile], InboxState]:
    """The inbox's files whose content was never requested (one per content, the first by name), and the state
    that records them. A file modified within ``settle_seconds`` of ``now`` waits for a later tick."""
    seen = set(state.requested)
    present, new = [], []
    for path in inbox_files(directory):
        if now - path.stat().st_mtime < settle_seconds:
            continue
        digest = file_hash(path)
        present.append(digest)
        if digest not in seen:
            seen.add(digest)
            new.append(NewFile(path, digest))
    requested = state.requested + [file.sha256 for file in new]
    keep = set(present)
    older = [digest for digest in requested if digest not in keep]
    trimmed = set(older[-REMEMBERED_HASHES:]) | keep
    return new, InboxState([digest for digest in requested if digest in trimmed])


@dg.sensor(
    job=polls_inbox_ingest,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one polls_inbox_ingest run per new CSV content in the polls inbox (ELECTION_POLLS_INBOX).",
)
def polls_inbox_sensor(context: dg.SensorEvaluationContext, storage: ProjectStorage):
    new, state = new_files(storage.polls_inbox_dir, InboxState.from_cursor(context.cursor), time.time())
    context.update_cursor(state.to_cursor())
    if not new:
        return dg.SkipReason(f"no new file in {storage.polls_inbox_dir}")
    day = campaign_day_of(today()).isoformat()
    for file in new:
        context.log.info(f"new polls file {file.path.name} ({file.sha256[:12]}): ingest, then forecast {day}")
    return [
        dg.RunRequest(
            run_key=f"polls-inbox-{file.sha256}",
            tags={FILE_TAG: file.path.name[:200], HASH_TAG: file.sha256, DAY_TAG: day},
        )
        for file in new
    ]


def forecast_requests(run: dg.DagsterRun) -> list[dg.RunRequest]:
    """What a finished ``polls_inbox_ingest`` run calls for: after a success, the forecast of the day its file
    arrived (its tag; a run launched by hand: today's, clamped) and the timeline; after anything else, nothing."""
    if run.status != dg.DagsterRunStatus.SUCCESS:
        return []
    day = run.tags.get(DAY_TAG) or campaign_day_of(today()).isoformat()
    tags = {f"{RUN_TAG_PREFIX}trigger": "polls_inbox", f"{RUN_TAG_PREFIX}ingest_run": run.run_id}
    if FILE_TAG in run.tags:
        tags[FILE_TAG] = run.tags[FILE_TAG]
    return [
        dg.RunRequest(
            run_key=f"polls-inbox-forecast-{run.run_id}",
            job_name=real_daily_forecast.name,
            partition_key=day,
            tags=tags,
        ),
        dg.RunRequest(run_key=f"polls-inbox-timeline-{run.run_id}", job_name=real_timeline.name, tags=tags),
    ]


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[polls_inbox_ingest],
    request_jobs=[real_daily_forecast, real_timeline],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful polls_inbox_ingest run: the day's forecast (real_daily_forecast) and the timeline.",
)
def polls_inbox_forecast_sensor(context: dg.RunStatusSensorContext):
    requests = forecast_requests(context.dagster_run)
    for request in requests:
        context.log.info(f"polls ingested by run {context.dagster_run.run_id}: requesting {request.job_name}")
    return requests
