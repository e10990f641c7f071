"""Schedules and the drift sensor, evaluated with Dagster's own test contexts on a real (temporary) instance."""

import json
import time

import dagster as dg
import pytest

from election_assets.defs.automation.cadence import Cadence
from election_assets.defs.automation.sensors import SensorState, drift_retraining_sensor
from election_assets.defs.resources import ProjectStorage
from election_assets.settings import SettingsError
from election_assets_tests.helpers import TRAINING_ASSETS


@pytest.fixture(scope="module")
def definitions(new_sandbox):
    return new_sandbox("automation").definitions()


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
    (sensor,) = definitions.sensors
    assert sensor.job_name == "retrain_on_drift"


def test_cron_strings_come_from_the_environment_and_are_validated():
    assert Cadence.from_env({"ELECTION_CRON_DRIFT": "*/30 * * * *"}).drift_cron == "*/30 * * * *"
    with pytest.raises(SettingsError, match="ELECTION_CRON_TRAINING"):
        Cadence.from_env({"ELECTION_CRON_TRAINING": "weekly"})
    with pytest.raises(SettingsError, match="ELECTION_RETRAIN_DRIFT_SHARE"):
        Cadence.from_env({"ELECTION_RETRAIN_DRIFT_SHARE": "2"})


# -- the sensor ----------------------------------------------------------------------------------------------


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def storage(tmp_path):
    return ProjectStorage(
        model_store_dir=str(tmp_path / "store"),
        real_model_store_dir=str(tmp_path / "real_store"),
        reports_dir=str(tmp_path / "reports"),
    )


def _report_drift(instance, share: float, columns=("urban_ratio", "undecided_rate")) -> int:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("drift_report", metadata={"drift_share": share, "drifted_columns": list(columns)})
    )
    return instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records[0].storage_id


def _tick(instance, storage, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage})
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


def test_no_second_retraining_while_one_is_in_flight(instance, storage):
    instance.add_run(dg.DagsterRun(job_name="retrain_on_drift", status=dg.DagsterRunStatus.STARTED))
    _report_drift(instance, 0.8)
    requests, cursor, skip = _tick(instance, storage)
    assert requests == [] and "in flight" in skip.skip_message
    assert SensorState.from_cursor(cursor).last_settled_report is None  # not lost: acted on after the run


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
