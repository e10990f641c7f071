"""The champion/challenger gate: a worse challenger never replaces the champion, and a promotion that fails or whose
process is killed at any step leaves the model store and the MLflow registry on the same champion (at the latest
once the next training run has started)."""

import multiprocessing
import os
from unittest import mock

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from election_assets.core.model_store import ModelStore
from election_assets.defs.resources import MlflowRegistry
from election_assets_tests.helpers import TRAINING_ASSETS, run_assets

KILLED = 9
# A challenger trained on a drifted regime beats a champion trained before the drift on that regime's held-out
# rows, so each of these training runs promotes (and so reaches the step it is killed at).
DRIFT = 1.5
FURTHER_DRIFT = 3.0
# Where a promotion's process is killed: the step, and whether the process dies before or after it.
KILL_POINTS = {
    "after registering the version": (MlflowRegistry, "register", "after"),
    "after writing the store version": (ModelStore, "publish", "after"),
    "after moving the alias": (ModelStore, "point_latest_to", "before"),
    "after moving LATEST": (ModelStore, "point_latest_to", "after"),
}


def _training_config(n_regions: int, drift: float = 0.0) -> dict:
    search = {"config": {"search_iterations": 1, "cv_folds": 2}}
    return {
        "ops": {
            "raw_regions": {"config": {"n_regions": n_regions, "seed": 21, "drift": drift}},
            "candidate_logistic_regression": search,
            "candidate_random_forest": search,
            "candidate_xgboost": search,
        }
    }


def _metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def _alias_version(sandbox) -> str | None:
    settings = sandbox.settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        return str(client.get_model_version_by_alias(settings.registered_model_name, "champion").version)
    except Exception:  # noqa: BLE001 - MLflow raises a generic exception for a missing alias
        return None


def _state(sandbox) -> dict:
    """What the API serves (LATEST, loaded and verified) and what the registry names."""
    store = ModelStore(sandbox.settings().model_store_dir)
    latest = store.latest_version()
    served = store.load() if latest else None
    return {
        "latest": latest,
        "loaded": served.version if served else None,
        # The registry version of the served model: the one the alias must name.
        "served_registry_version": served.manifest.source_run.registered_version if served else None,
        "alias": _alias_version(sandbox),
    }


def _train_and_die(env: dict[str, str], run_config: dict, owner: type, step: str, when: str) -> None:
    os.environ.update(env)
    real_step = getattr(owner, step)

    def die_around_step(*args, **kwargs):
        if when == "before":
            os._exit(KILLED)  # no cleanup, no exception handlers: a killed process
        real_step(*args, **kwargs)
        os._exit(KILLED)

    setattr(owner, step, die_around_step)
    from election_assets.definitions import defs

    defs().resolve_job_def("election_pipeline").execute_in_process(
        run_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in TRAINING_ASSETS],
    )


def _killed_training(sandbox, kill_point: str, drift: float) -> dict:
    owner, step, when = KILL_POINTS[kill_point]
    trainer = multiprocessing.get_context("spawn").Process(
        target=_train_and_die, args=(sandbox.env, _training_config(2_000, drift), owner, step, when)
    )
    trainer.start()
    trainer.join(300)
    return {"exitcode": trainer.exitcode, **_state(sandbox)}


def _gated(sandbox, name: str, result) -> dict:
    """What one gated training left: the champion decision, the challenger's MLflow run, the store and registry."""
    champion = _metadata(result, "champion_model")
    challenger = _metadata(result, f"candidate_{champion['challenger']}")
    return {name: champion, f"{name}_run_id": challenger["mlflow_run_id"], f"after_{name}": _state(sandbox)}


@pytest.fixture(scope="module")
def history(new_sandbox):
    """Training runs in one sandbox, each state recorded right after its run: a failed first publish, a first
    champion, promotions killed before LATEST moves, a worse challenger, a promotion whose LATEST cannot be moved,
    a better challenger, and a promotion killed after LATEST moved."""
    sandbox = new_sandbox("promotion")
    real_publish = ModelStore.publish

    def publish_then_crash(self, manifest, write_artifacts, **kwargs):
        def write_half(directory):
            write_artifacts(directory)
            raise OSError("simulated crash while writing the champion")

        return real_publish(self, manifest, write_half, **kwargs)

    ModelStore.publish = publish_then_crash
    try:
        crashed = run_assets(sandbox, _training_config(1_500), list(TRAINING_ASSETS), raise_on_error=False)
    finally:
        ModelStore.publish = real_publish
    history = {"sandbox": sandbox, "after_crash": {**_state(sandbox), "success": crashed.success}}

    first = run_assets(sandbox, _training_config(8_000), list(TRAINING_ASSETS))
    history |= {"first": _metadata(first, "champion_model"), "after_first": _state(sandbox)}

    # The kill after moving the alias comes last: the worse challenger's run that follows must put the alias back.
    history["killed"] = {
        point: _killed_training(sandbox, point, DRIFT)
        for point in ("after registering the version", "after writing the store version", "after moving the alias")
    }

    history |= _gated(sandbox, "worse", run_assets(sandbox, _training_config(1_200), list(TRAINING_ASSETS)))

    with mock.patch.object(ModelStore, "point_latest_to", side_effect=OSError("simulated failure to replace LATEST")):
        unmovable = run_assets(sandbox, _training_config(2_000, DRIFT), list(TRAINING_ASSETS), raise_on_error=False)
    history["after_unmovable_latest"] = {**_state(sandbox), "success": unmovable.success}

    history |= _gated(sandbox, "better", run_assets(sandbox, _training_config(2_000, DRIFT), list(TRAINING_ASSETS)))

    history["killed"]["after moving LATEST"] = _killed_training(sandbox, "after moving LATEST", FURTHER_DRIFT)
    return history


def test_crash_while_publishing_leaves_no_champion_and_no_registry_alias(history):
    assert history["after_crash"] == {
        "latest": None,
        "loaded": None,
        "served_registry_version": None,
        "alias": None,
        "success": False,
    }


def test_first_loadable_champion_is_always_promoted(history):
    first, after = history["first"], history["after_first"]
    assert first["promoted"] is True
    assert after["loaded"] == after["latest"] == first["model_store_version"]
    assert after["alias"] == after["served_registry_version"] == first["registered_model_version"]


@pytest.mark.parametrize("kill_point", ["after registering the version", "after writing the store version"])
def test_promotion_killed_before_the_alias_moves_leaves_both_on_the_previous_champion(history, kill_point):
    killed, before = history["killed"][kill_point], history["after_first"]
    assert killed["exitcode"] == KILLED, "the challenger was not promoted, so the kill point was never reached"
    assert {key: killed[key] for key in before} == before


def test_promotion_killed_after_moving_the_alias_is_put_back_by_the_next_run(history):
    killed, before = history["killed"]["after moving the alias"], history["after_first"]
    assert killed["exitcode"] == KILLED, "the challenger was not promoted, so the kill point was never reached"
    # The API still serves the previous champion; the alias is one step ahead, on a complete, unserved version.
    assert killed["loaded"] == killed["latest"] == before["latest"]
    assert killed["alias"] not in (None, before["alias"])
    # The next training run (here one whose challenger is not promoted) moves the alias back first.
    assert history["worse"]["champion_alias_restored_from"] == killed["alias"]
    assert history["after_worse"] == before


def test_worse_challenger_does_not_replace_the_champion(history):
    worse = history["worse"]
    assert worse["promoted"] is False
    assert "does not beat champion" in worse["reason"]
    assert worse["test_log_loss"] > worse["incumbent_test_log_loss"]
    assert worse["champion_before"] == worse["champion_after"] == history["after_first"]["latest"]
    assert history["after_worse"] == history["after_first"]


def test_failure_to_move_latest_moves_the_alias_back(history):
    assert history["after_unmovable_latest"] == {**history["after_first"], "success": False}


def test_promotion_killed_after_moving_latest_leaves_both_on_the_new_champion(history):
    killed, before = history["killed"]["after moving LATEST"], history["after_better"]
    assert killed["exitcode"] == KILLED, "the challenger was not promoted, so the kill point was never reached"
    assert killed["loaded"] == killed["latest"] != before["latest"]
    assert killed["alias"] == killed["served_registry_version"] != before["alias"]
    store = ModelStore(history["sandbox"].settings().model_store_dir)
    assert store.load(before["latest"]).version == before["latest"]  # the previous champion is still there


def test_better_challenger_replaces_the_champion_in_the_store_and_the_registry(history):
    better, after = history["better"], history["after_better"]
    assert better["promoted"] is True and better["log_loss_improvement"] > 0
    assert better["champion_before"] == history["after_first"]["latest"]
    assert better["champion_after"] == after["loaded"] == after["latest"] == better["model_store_version"]
    assert after["alias"] == after["served_registry_version"] == better["registered_model_version"]


@pytest.mark.parametrize("outcome", ["worse", "better"])
def test_mlflow_run_of_the_challenger_records_the_loop(history, outcome):
    champion = history[outcome]
    run = MlflowClient(history["sandbox"].settings().mlflow_tracking_uri).get_run(history[f"{outcome}_run_id"])
    assert run.data.metrics["log_loss_improvement"] == pytest.approx(champion["log_loss_improvement"])
    assert run.data.metrics["incumbent_test_log_loss"] == pytest.approx(champion["incumbent_test_log_loss"])
    assert run.data.tags["loop.champion_after"] == champion["champion_after"]
