"""Runs as the UI sees them: launched from the CLI with the code location's origin, and a run killed with its process
marked failed so it no longer holds retraining back."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from election_assets.defs.automation.runs import dead_run_sensor, fail_runs_whose_process_is_gone
from election_assets.defs.automation.sensors import drift_retraining_sensor
from election_assets.defs.execution import PROCESS_TAGS, recorded_process
from election_assets.launch import CodeLocation, launch
from election_assets.processes import ProcessIdentity
from election_assets_tests.helpers import sensor_resources

ROOT = Path(__file__).resolve().parents[1]
# The run label the UI filters a job's runs by: the repository and the location workspace.yaml loads.
REPOSITORY_LABEL = f"__repository__@{CodeLocation.from_workspace().name}"
SMALL_TRAINING = {
    "ops": {
        "raw_regions": {"config": {"n_regions": 4_000, "seed": 3}},
        "candidate_logistic_regression": {"config": {"search_iterations": 2}},
        "candidate_random_forest": {"config": {"search_iterations": 2}},
        "candidate_xgboost": {"config": {"search_iterations": 2}},
    }
}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A Dagster home on disk (the project's SQLite instance), shared by this process and its subprocesses."""
    path = tmp_path / "dagster_home"
    path.mkdir()
    shutil.copy(ROOT / "instance" / "dagster.yaml", path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


def test_a_launched_run_carries_the_code_location_origin_the_ui_lists_job_runs_by(sandbox, home):
    with sandbox.environment(), dg.DagsterInstance.from_config(str(home)) as instance:
        result = launch("drift_check", instance)  # fails fast without a champion: the origin is what matters
        run = instance.get_run_by_id(result.run_id)
        assert run.remote_job_origin.location_name == CodeLocation.from_workspace().name
        listed = instance.get_runs(dg.RunsFilter(job_name="drift_check", tags={REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}))
        assert [r.run_id for r in listed] == [result.run_id]
        # What `dagster job execute` used to create: a run without origin, which that filter does not find.
        sandbox.definitions().resolve_job_def("drift_check").execute_in_process(instance=instance, raise_on_error=False)
        assert len(instance.get_runs(dg.RunsFilter(job_name="drift_check"))) == 2
        assert len(instance.get_runs(dg.RunsFilter(tags={REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}))) == 1


def test_a_launched_run_records_the_process_that_executes_it(sandbox, home):
    with sandbox.environment(), dg.DagsterInstance.from_config(str(home)) as instance:
        result = launch("drift_check", instance)
        process = recorded_process(instance.get_run_by_id(result.run_id).tags)
    assert process == ProcessIdentity.current()
    assert process.is_gone() is False


def test_process_identity_tells_a_finished_process_a_reused_id_and_another_host():
    finished = subprocess.Popen([sys.executable, "-c", "import os, json; print(os.getpid())"], stdout=subprocess.PIPE)
    pid = int(finished.communicate()[0])
    me = ProcessIdentity.current()
    assert ProcessIdentity(me.host, pid, me.started).is_gone() is True
    assert ProcessIdentity(me.host, me.pid, me.started + "0").is_gone() is True  # the id now names another process
    assert ProcessIdentity("another-host", me.pid, me.started).is_gone() is None


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_a_training_run_killed_with_its_process_is_marked_failed_and_retraining_goes_ahead(sandbox, home):
    env = {**os.environ, **sandbox.env, "DAGSTER_HOME": str(home)}
    command = [sys.executable, "-m", "election_assets.launch", "weekly_training", "--config-json"]
    worker = subprocess.Popen([*command, json.dumps(SMALL_TRAINING)], env=env, cwd=ROOT)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:

            def started_run():
                runs = instance.get_runs(dg.RunsFilter(job_name="weekly_training"))
                return runs[0] if runs and PROCESS_TAGS["pid"] in runs[0].tags else None

            run = _wait_for(started_run, 120, "the training run to start and record its process")
            assert int(run.tags[PROCESS_TAGS["pid"]]) == worker.pid
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(30)
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster leaves

            # A drift report crosses the threshold while the dead run still reads STARTED.
            instance.report_runless_asset_event(
                dg.AssetMaterialization("drift_report", metadata={"drift_share": 0.6, "drifted_columns": ["a"]})
            )
            context = dg.build_sensor_context(instance=instance, resources=sensor_resources(sandbox.env))
            request = drift_retraining_sensor(context)
            assert isinstance(request, dg.RunRequest), request
            failed = instance.get_run_by_id(run.run_id)
            assert failed.status == dg.DagsterRunStatus.FAILURE
            assert fail_runs_whose_process_is_gone(instance) == []  # marked once
            skip = dead_run_sensor(dg.build_sensor_context(instance=instance))
            assert "no run has lost its process" in skip.skip_message
    finally:
        if worker.poll() is None:
            worker.kill()
