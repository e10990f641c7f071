"""The champion/challenger gate: a worse challenger never replaces the champion, and a failed publish leaves both
the model store and the MLflow registry on the previous champion."""

import pytest
from mlflow.tracking import MlflowClient

from election_assets.core.model_store import ModelStore
from election_assets_tests.helpers import TRAINING_ASSETS, run_assets


def _training_config(n_regions: int) -> dict:
    search = {"config": {"search_iterations": 1, "cv_folds": 2}}
    return {
        "ops": {
            "raw_regions": {"config": {"n_regions": n_regions, "seed": 21}},
            "candidate_logistic_regression": search,
            "candidate_random_forest": search,
            "candidate_xgboost": search,
        }
    }


def _champion_metadata(result) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["champion_model"]]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def _alias_version(sandbox) -> str | None:
    settings = sandbox.settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        return str(client.get_model_version_by_alias(settings.registered_model_name, "champion").version)
    except Exception:  # noqa: BLE001 - MLflow raises a generic exception for a missing alias
        return None


@pytest.fixture(scope="module")
def history(new_sandbox):
    """Three training runs in one sandbox: a failed publish, a first champion, then a worse challenger."""
    sandbox = new_sandbox("promotion")
    store = ModelStore(sandbox.settings().model_store_dir)
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
    after_crash = {"latest": store.latest_version(), "alias": _alias_version(sandbox), "success": crashed.success}

    first = run_assets(sandbox, _training_config(8_000), list(TRAINING_ASSETS))
    first_version = store.latest_version()
    first_alias = _alias_version(sandbox)
    worse = run_assets(sandbox, _training_config(1_200), list(TRAINING_ASSETS))
    return {
        "sandbox": sandbox,
        "store": store,
        "after_crash": after_crash,
        "first": _champion_metadata(first),
        "first_version": first_version,
        "first_alias": first_alias,
        "worse": _champion_metadata(worse),
    }


def test_crash_while_publishing_leaves_no_champion_and_no_registry_alias(history):
    assert history["after_crash"] == {"latest": None, "alias": None, "success": False}


def test_first_loadable_champion_is_always_promoted(history):
    assert history["first"]["promoted"] is True
    assert history["first_version"] == history["first"]["model_store_version"]
    assert history["first_alias"] == history["first"]["registered_model_version"]


def test_worse_challenger_does_not_replace_the_champion(history):
    worse = history["worse"]
    assert worse["promoted"] is False
    assert "does not beat champion" in worse["reason"]
    assert worse["test_log_loss"] > worse["incumbent_test_log_loss"]
    assert history["store"].latest_version() == history["first_version"]
    assert _alias_version(history["sandbox"]) == history["first_alias"]
    assert history["store"].load().version == history["first_version"]
