"""The loop closes: drifted data comes in, the drift report says so, the sensor asks for retraining, and a better
model (on the drifted distribution) is promoted to the model store and the MLflow registry."""

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from election_assets.core.model_store import ModelStore
from election_assets.defs.automation.sensors import drift_retraining_sensor
from election_assets.defs.jobs import TRAINS_CHAMPION
from election_assets_tests.helpers import sensor_resources

SEARCH = {"config": {"search_iterations": 2}}
SMALL = {
    "ops": {
        "raw_regions": {"config": {"n_regions": 6_000, "seed": 31}},
        "current_regions": {"config": {"n_regions": 1_500, "seed": 32}},
        "candidate_logistic_regression": SEARCH,
        "candidate_random_forest": SEARCH,
        "candidate_xgboost": SEARCH,
    }
}
DRIFTED_BATCH = {"ops": {"current_regions": {"config": {"n_regions": 1_500, "seed": 33, "drift": 1.5}}}}


def _metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def _tick(instance, storage, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=storage)
    return drift_retraining_sensor(context), context.cursor


@pytest.fixture(scope="module")
def loop(new_sandbox):
    sandbox = new_sandbox("drift_loop")
    definitions = sandbox.definitions()
    settings = sandbox.settings()
    storage = sensor_resources(sandbox.env)
    store = ModelStore(settings.model_store_dir)
    with dg.instance_for_test() as instance, sandbox.environment():
        definitions.resolve_job_def("election_pipeline").execute_in_process(run_config=SMALL, instance=instance)
        before = store.latest_version()
        drift = definitions.resolve_job_def("drift_check").execute_in_process(
            run_config=DRIFTED_BATCH, instance=instance
        )
        request, cursor = _tick(instance, storage)
        assert isinstance(request, dg.RunRequest), request
        retrain_config = dict(request.run_config)
        retrain_config["ops"] = {
            **retrain_config["ops"],
            **{k: v for k, v in SMALL["ops"].items() if k.startswith("candidate")},
        }
        retrain = definitions.resolve_job_def("retrain_on_drift").execute_in_process(
            run_config=retrain_config, instance=instance, tags=request.tags
        )
        after_tick, _ = _tick(instance, storage, cursor)
        champion_training_runs = instance.get_runs(filters=dg.RunsFilter(tags=TRAINS_CHAMPION))
        yield {
            "settings": settings,
            "store": store,
            "before": before,
            "drift": _metadata(drift, "drift_report"),
            "request": request,
            "retrain": retrain,
            "champion": _metadata(retrain, "champion_model"),
            "after_tick": after_tick,
            "champion_training_jobs": sorted(run.job_name for run in champion_training_runs),
            "instance": instance,
            "definitions": definitions,
            "retrain_drift": _metadata(retrain, "drift_report"),
        }


def test_drifted_batch_is_reported_as_drift(loop):
    assert loop["drift"]["dataset_drift"] is True
    assert loop["drift"]["drift_share"] >= 0.3
    assert loop["drift"]["reference_model_version"] == loop["before"]  # measured against the served champion


def test_sensor_requests_retraining_from_the_drifted_regime(loop):
    request = loop["request"]
    assert request.tags["election/champion_before"] == loop["before"]
    assert request.run_config["ops"]["raw_regions"]["config"]["drift"] == 1.5


def test_retraining_promotes_a_better_champion_on_the_drifted_distribution(loop):
    champion = loop["champion"]
    assert loop["retrain"].success
    assert champion["promoted"] is True
    assert champion["trigger"] == "drift"
    assert champion["champion_before"] == loop["before"]
    assert champion["log_loss_improvement"] > 0
    assert champion["test_log_loss"] < champion["incumbent_test_log_loss"]

    new_version = loop["store"].latest_version()
    assert new_version != loop["before"] and champion["champion_after"] == new_version
    settings = loop["settings"]
    client = MlflowClient(settings.mlflow_tracking_uri)
    alias = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert (
        str(alias.version)
        == champion["registered_model_version"]
        == loop["store"].load().manifest.source_run.registered_version
    )
    run = client.get_run(alias.run_id)
    assert run.data.tags["loop.trigger"] == "drift"
    assert run.data.tags["loop.champion_before"] == loop["before"]


def test_runs_of_the_jobs_that_train_the_champion_carry_the_tag_the_sensor_waits_on(loop):
    # The sensor's in-flight check filters runs by this tag; Dagster copies it from the job onto each run.
    assert loop["champion_training_jobs"] == ["election_pipeline", "retrain_on_drift"]


def test_after_retraining_the_drift_is_gone_and_the_sensor_rests(loop):
    assert loop["retrain_drift"]["reference_model_version"] == loop["store"].latest_version() != loop["before"]
    skip = loop["after_tick"]
    assert isinstance(skip, dg.SkipReason)
    assert "below" in skip.skip_message


def test_a_retraining_that_promotes_nothing_leaves_the_drift_in_view(loop):
    """The batch drifts again, the retraining's challenger is refused: the old champion still serves, so the
    drift report keeps measuring against it and still reports drift (the loop stays open)."""
    instance, definitions, store = loop["instance"], loop["definitions"], loop["store"]
    serving = store.latest_version()
    further = {"ops": {"current_regions": {"config": {"n_regions": 1_500, "seed": 34, "drift": 3.0}}}}
    drift = definitions.resolve_job_def("drift_check").execute_in_process(run_config=further, instance=instance)
    assert _metadata(drift, "drift_report")["dataset_drift"] is True
    refused = {
        "ops": {
            "raw_regions": {"config": {"n_regions": 6_000, "seed": 35, "drift": 3.0}},
            "champion_model": {"config": {"min_improvement": 10.0}},  # no challenger can clear this bar
            **{k: v for k, v in SMALL["ops"].items() if k.startswith("candidate")},
        }
    }
    retrain = definitions.resolve_job_def("retrain_on_drift").execute_in_process(run_config=refused, instance=instance)
    assert _metadata(retrain, "champion_model")["promoted"] is False and store.latest_version() == serving
    report = _metadata(retrain, "drift_report")
    assert report["reference_model_version"] == serving
    assert report["dataset_drift"] is True and report["drift_share"] >= 0.3
