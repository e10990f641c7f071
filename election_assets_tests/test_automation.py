"""Schedules and the drift sensor, evaluated with Dagster's own test contexts on a real (temporary) instance."""

import json
import time
from datetime import timedelta

import dagster as dg
import pytest

# Private, but a queued run must name the code location it will be launched from (the run queue reads it).
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin

from election_assets.core.synthetic import generate_regions
from election_assets.defs.automation.sensors import SensorState, drift_retraining_sensor
from election_assets.settings import Cadence, SettingsError
from election_assets_tests.helpers import TRAINING_ASSETS, sensor_resources


@pytest.fixture(scope="module")
def automation_sandbox(new_sandbox):
    return new_sandbox("automation")


@pytest.fixture(scope="module")
def definitions(automation_sandbox):
    return automation_sandbox.definitions()


def _selected(definitions, job_name: str) -> set[str]:
    job = definitions.resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.selected_asset_keys}


def test_schedules_have_the_stated_cadence(definitions):
    crons = {s.name: s.cron_schedule for s in definitions.schedules}
    assert crons == {
        "weekly_training_schedule": "0 3 * * 1",
        "daily_scoring_schedule": "0 6 * * *",
        "drift_check_schedule": "0 */6 * * *",
    }
    for schedule in definitions.schedules:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert schedule.execution_timezone == "UTC"


def test_schedules_select_the_right_slices_of_the_graph(definitions):
    assert _selected(definitions, "weekly_training") == set(TRAINING_ASSETS)
    assert _selected(definitions, "daily_scoring") == {
        "current_regions",
        "cleaned_current_regions",
        "batch_predictions",
    }
    assert _selected(definitions, "drift_check") == {"current_regions", "cleaned_current_regions", "drift_report"}
    assert _selected(definitions, "retrain_on_drift") == set(TRAINING_ASSETS) | {"batch_predictions", "drift_report"}
    sensors = {sensor.name: sensor for sensor in definitions.sensors}
    assert set(sensors) == {
        "drift_retraining_sensor",
        "dead_run_sensor",
        "polls_inbox_sensor",
        "polls_inbox_forecast_sensor",
    }
    assert sensors["drift_retraining_sensor"].job_name == "retrain_on_drift"


def test_freshness_policies_have_the_stated_windows(definitions):
    policies = {
        spec.key.to_user_string(): spec.freshness_policy
        for spec in definitions.resolve_all_asset_specs()
        if spec.freshness_policy is not None
    }
    windows = {
        name: (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta())
        for name, policy in policies.items()
    }
    assert windows == {
        "champion_model": (timedelta(days=7), timedelta(days=8)),
        "batch_predictions": (timedelta(days=1), timedelta(days=2)),
        "drift_report": (timedelta(hours=7), timedelta(hours=12)),
    }


def test_cron_strings_come_from_the_environment_and_are_validated():
    assert Cadence.from_env({"ELECTION_CRON_DRIFT": "*/30 * * * *"}).drift_cron == "*/30 * * * *"
    with pytest.raises(SettingsError, match="ELECTION_CRON_TRAINING"):
        Cadence.from_env({"ELECTION_CRON_TRAINING": "weekly"})
    # Five fields, but minute 61 does not exist: Dagster's own validation rejects it, naming the variable.
    with pytest.raises(SettingsError, match="ELECTION_CRON_DRIFT"):
        Cadence.from_env({"ELECTION_CRON_DRIFT": "61 * * * *"})
    with pytest.raises(SettingsError, match="ELECTION_RETRAIN_DRIFT_SHARE"):
        Cadence.from_env({"ELECTION_RETRAIN_DRIFT_SHARE": "2"})


def test_a_cron_override_reaches_the_schedule_definitions(automation_sandbox, monkeypatch):
    monkeypatch.setenv("ELECTION_CRON_DRIFT", "*/30 * * * *")
    crons = {s.name: s.cron_schedule for s in automation_sandbox.definitions().schedules}
    assert crons["drift_check_schedule"] == "*/30 * * * *"
    assert crons["weekly_training_schedule"] == "0 3 * * 1"


# -- the sensor ----------------------------------------------------------------------------------------------


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def storage(tmp_path):
    """The sensor's resources (the project storage and the retraining policy) for a data directory of its own."""
    return sensor_resources({"ELECTION_DATA_DIR": str(tmp_path)})


def _report_drift(instance, share: float, columns=("urban_ratio", "undecided_rate")) -> int:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("drift_report", metadata={"drift_share": share, "drifted_columns": list(columns)})
    )
    return instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records[0].storage_id


def _tick(instance, storage, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=storage)
    result = drift_retraining_sensor(context)
    requests = [result] if isinstance(result, dg.RunRequest) else []
    return requests, context.cursor, result


def test_drift_above_threshold_requests_exactly_one_run(instance, storage):
    report = _report_drift(instance, 0.5)
    requests, cursor, _ = _tick(instance, storage)
    assert len(requests) == 1
    (request,) = requests
    assert request.run_key == f"drift-report-{report}"
    assert request.tags["election/trigger"] == "drift"
    assert request.tags["election/drift_share"] == "0.500"
    assert request.tags["election/drifted_columns"] == "urban_ratio,undecided_rate"
    assert request.tags["election/champion_before"] == "none"
    assert json.loads(cursor)["last_triggered_report"] == report


def test_drift_below_threshold_requests_nothing(instance, storage):
    report = _report_drift(instance, 0.1)
    requests, cursor, skip = _tick(instance, storage)
    assert requests == [] and "below" in skip.skip_message
    assert SensorState.from_cursor(cursor).last_settled_report == report


# This project's code location, as workspace.yaml names it.
CODE_LOCATION = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("election_forecasting"), "__repository__")


def _add_run(instance, definitions, job_name: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run as the daemon, the UI and the CLI create one for the job: it carries the job's run tags
    (``TRAINS_CHAMPION`` on the jobs that train the champion)."""
    job = definitions.resolve_job_def(job_name)
    return instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            status=status,
            tags=dict(job.run_tags),
            remote_job_origin=CODE_LOCATION.get_job_origin(job_name),
        )
    )


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED])
@pytest.mark.parametrize("job_name", ["retrain_on_drift", "weekly_training", "election_pipeline"])
def test_no_retraining_while_a_champion_training_run_is_in_flight(instance, storage, definitions, job_name, status):
    _add_run(instance, definitions, job_name, status)
    _report_drift(instance, 0.8)
    requests, cursor, skip = _tick(instance, storage)
    assert requests == [] and "in flight" in skip.skip_message
    assert SensorState.from_cursor(cursor).last_settled_report is None  # not lost: acted on after the run


def _add_one_off_materialization(instance, definitions, asset: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run as the UI's "Materialize" button or ``dagster asset materialize --select`` creates one: the implicit
    asset job, subset to the asset, without any job tags."""
    selection = {dg.AssetKey(asset)}
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection)
    run = instance.create_run_for_job(
        job, status=status, asset_selection=selection, remote_job_origin=CODE_LOCATION.get_job_origin(job.name)
    )
    assert not run.tags.get("election/trains_champion")
    return run


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED])
def test_a_one_off_materialization_of_the_champion_holds_retraining_back(instance, storage, definitions, status):
    _add_one_off_materialization(instance, definitions, "champion_model", status)
    _report_drift(instance, 0.8)
    requests, cursor, skip = _tick(instance, storage)
    assert requests == [] and "in flight" in skip.skip_message
    assert SensorState.from_cursor(cursor).last_settled_report is None


def test_runs_that_do_not_train_the_champion_do_not_hold_retraining_back(instance, storage, definitions):
    for job_name in ("daily_scoring", "drift_check"):
        _add_run(instance, definitions, job_name, dg.DagsterRunStatus.STARTED)
    _add_one_off_materialization(instance, definitions, "batch_predictions", dg.DagsterRunStatus.STARTED)
    _report_drift(instance, 0.8)
    requests, _, _ = _tick(instance, storage)
    assert len(requests) == 1


def test_a_trigger_held_back_by_a_run_in_flight_fires_once_that_run_ends(instance, storage, definitions):
    run = _add_run(instance, definitions, "weekly_training", dg.DagsterRunStatus.STARTED)
    report = _report_drift(instance, 0.8)
    requests, cursor, skip = _tick(instance, storage)
    assert requests == [] and "in flight" in skip.skip_message

    success = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name)
    instance.report_dagster_event(success, run.run_id)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS

    # Each tick is a new context built from the stored cursor, as the daemon builds it.
    (request,), cursor, _ = _tick(instance, storage, cursor)
    assert request.run_key == f"drift-report-{report}"
    requests, _, skip = _tick(instance, storage, cursor)
    assert requests == [] and "already settled" in skip.skip_message


def test_cool_down_is_respected(instance, storage):
    _report_drift(instance, 0.6)
    (first,), cursor, _ = _tick(instance, storage)
    _report_drift(instance, 0.7)  # drift persists right after the retraining was requested
    requests, cursor_after, skip = _tick(instance, storage, cursor)
    assert requests == [] and "cool-down" in skip.skip_message
    expired = SensorState.from_cursor(cursor_after)
    expired = SensorState(expired.last_settled_report, expired.last_triggered_report, time.time() - 7 * 3600)
    requests, _, _ = _tick(instance, storage, expired.to_cursor())
    assert len(requests) == 1 and requests[0].run_key != first.run_key


def test_cursor_survives_a_new_sensor_context(instance, storage):
    _report_drift(instance, 0.5)
    (request,), cursor, _ = _tick(instance, storage)
    # A daemon restart builds a new context from the stored cursor: the same report must not trigger again.
    requests, cursor_again, skip = _tick(instance, storage, cursor)
    assert requests == [] and "already settled" in skip.skip_message
    assert cursor_again == cursor


def test_a_file_fed_history_is_re_ingested_from_its_file(
    instance, storage, definitions, automation_sandbox, tmp_path, monkeypatch
):
    history_file = tmp_path.resolve() / "feeds" / "history.csv"
    history_file.parent.mkdir()
    generate_regions(200, seed=5).to_csv(history_file, index=False)
    # Configured relative to the working directory of the run that ingested it; the retraining runs elsewhere.
    monkeypatch.chdir(tmp_path)
    relative = {"ops": {"raw_regions": {"config": {"source_path": "feeds/history.csv"}}}}
    from_file = {"ops": {"raw_regions": {"config": {"source_path": str(history_file)}}}}
    # The batch is synthetic and drifted, but the history came from a file: the file wins.
    drifted_batch = {"ops": {"current_regions": {"config": {"n_regions": 100, "drift": 1.5}}}}
    pipeline = definitions.resolve_job_def("election_pipeline")
    with automation_sandbox.environment():
        for run_config, asset in ((relative, "raw_regions"), (drifted_batch, "current_regions")):
            pipeline.execute_in_process(run_config=run_config, instance=instance, asset_selection=[dg.AssetKey(asset)])
        _report_drift(instance, 0.5)
        (request,), _, _ = _tick(instance, storage)
        assert request.run_config == from_file

        monkeypatch.chdir(history_file.parent)

        definitions.resolve_job_def("retrain_on_drift").execute_in_process(
            run_config=request.run_config, instance=instance, asset_selection=[dg.AssetKey("raw_regions")]
        )
    history = instance.fetch_materializations(dg.AssetKey("raw_regions"), limit=2).records
    assert len(history) == 2
    assert all(record.asset_materialization.metadata["source"].value == str(history_file) for record in history)
    assert history[0].asset_materialization.metadata["rows"].value == 200
