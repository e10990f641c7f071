"""The model store contract: complete versions only, an atomic LATEST pointer, verified loads, crash safety."""

import json
import multiprocessing
import os

import numpy as np
import pytest

from election_assets.core.compiled_model import LinearModel, save_compiled_model
from election_assets.core.features import FEATURE_NAMES
from election_assets.core.manifest import SYNTHETIC, ModelManifest, SourceRun
from election_assets.core.model_store import MODEL_FILE, ModelStore, ModelStoreError


def _manifest(accuracy: float = 0.5, feature_names: tuple[str, ...] = FEATURE_NAMES) -> ModelManifest:
    return ModelManifest(
        data_mode=SYNTHETIC,
        model_name="test",
        model_kind="linear",
        trained_at="2026-01-01T00:00:00+00:00",
        metrics={"accuracy": accuracy},
        feature_names=list(feature_names),
        input_schema=[],
        labels={},
        hyperparameters={},
        training_data_fingerprint="test",
        training_rows=1,
        source_run=SourceRun("test"),
        library_versions={},
    )


def _model(offset: float) -> LinearModel:
    n = len(FEATURE_NAMES)
    return LinearModel(mean=np.zeros(n), scale=np.ones(n), coef=np.full(n, 0.01), intercept=offset)


def _publish(store: ModelStore, offset: float) -> str:
    return store.publish(
        _manifest(offset),
        lambda directory: save_compiled_model(_model(offset), directory / MODEL_FILE),
    )


def test_publish_then_load_returns_the_verified_latest(tmp_path):
    store = ModelStore(tmp_path)
    first = _publish(store, 0.1)
    second = _publish(store, 0.2)
    assert store.latest_version() == second
    loaded = store.load()
    assert loaded.version == second and loaded.model.intercept == 0.2
    assert store.load(first).model.intercept == 0.1
    assert set(loaded.manifest.files) == {MODEL_FILE}


def test_empty_store_reports_that_nothing_was_published(tmp_path):
    with pytest.raises(ModelStoreError, match="no model published yet"):
        ModelStore(tmp_path).load()


def test_failure_while_writing_leaves_the_previous_model_and_no_partial_version(tmp_path):
    store = ModelStore(tmp_path)
    good = _publish(store, 0.1)

    def crash_midway(directory):
        (directory / MODEL_FILE).write_bytes(b"PK\x03\x04 half a model")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.publish(_manifest(), crash_midway)
    assert store.latest_version() == good
    assert store.list_versions() == [good]
    assert store.load().model.intercept == 0.1


def _killed_writer(root: str) -> None:
    def die_midway(directory):
        (directory / MODEL_FILE).write_bytes(b"PK\x03\x04 half a model")
        os._exit(9)  # no cleanup, no exception handlers: a killed process

    ModelStore(root).publish(_manifest(), die_midway)


def test_process_killed_mid_write_leaves_the_previous_model_loadable(tmp_path):
    store = ModelStore(tmp_path)
    good = _publish(store, 0.1)
    writer = multiprocessing.get_context("spawn").Process(target=_killed_writer, args=(str(tmp_path),))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 9
    assert store.latest_version() == good
    assert store.load().version == good
    assert store.discard_stale_staging() == 1  # the champion asset sweeps such leftovers before publishing
    assert store.list_versions() == [good]


def test_checksum_mismatch_is_detected(tmp_path):
    store = ModelStore(tmp_path)
    version = _publish(store, 0.1)
    model_path = store.version_dir(version) / MODEL_FILE
    model_path.write_bytes(model_path.read_bytes()[:-10])
    with pytest.raises(ModelStoreError, match="checksum mismatch for model.npz"):
        store.load()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 half a model", b"not a numpy archive"])
def test_unreadable_model_file_with_a_matching_checksum_is_a_store_error(tmp_path, content):
    # A writer that hashed a truncated file: the checksum passes, loading must still fail as a ModelStoreError,
    # the one error the champion asset, the scoring asset and the API treat as "no loadable model".
    store = ModelStore(tmp_path)
    good = _publish(store, 0.1)
    bad = store.publish(_manifest(), lambda directory: (directory / MODEL_FILE).write_bytes(content))
    with pytest.raises(ModelStoreError, match="model file is unreadable"):
        store.load(bad)
    assert store.load(good).version == good


def test_manifest_with_another_feature_list_is_refused(tmp_path):
    store = ModelStore(tmp_path)
    version = store.publish(
        _manifest(feature_names=FEATURE_NAMES[:-1]),
        lambda directory: save_compiled_model(_model(0.1), directory / MODEL_FILE),
    )
    with pytest.raises(ModelStoreError, match="feature list does not match"):
        store.load(version)


def test_pointer_to_a_missing_version_is_reported(tmp_path):
    store = ModelStore(tmp_path)
    _publish(store, 0.1)
    store.pointer_path.write_text(json.dumps({"version": "20990101T000000-abcdef"}))
    with pytest.raises(ModelStoreError, match="has no manifest"):
        store.load()


def test_pointer_cannot_name_an_incomplete_version(tmp_path):
    with pytest.raises(ModelStoreError, match="no complete version"):
        ModelStore(tmp_path).point_latest_to("not-there")


def test_manifest_round_trips_through_the_store_as_the_typed_contract(tmp_path):
    store = ModelStore(tmp_path)
    version = _publish(store, 0.25)
    manifest = store.read_manifest(version)
    assert isinstance(manifest, ModelManifest) and isinstance(manifest.source_run, SourceRun)
    assert manifest.version == version and manifest.metrics == {"accuracy": 0.25}
    assert manifest.files[MODEL_FILE].bytes == (store.version_dir(version) / MODEL_FILE).stat().st_size


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"training_rows": "many"}, "manifest.training_rows must be an integer"),
        ({"source_run": {"dagster_run_id": 7}}, "manifest.source_run.dagster_run_id must be a str"),
        ({"metrics": {"accuracy": "high"}}, "manifest.metrics.accuracy must be a number"),
        ({"surprise": 1}, "unknown field"),
        ({"manifest_format": 1}, "manifest_format 1 is not 2"),
    ],
)
def test_a_manifest_that_breaks_the_contract_is_refused_naming_the_field(tmp_path, change, message):
    store = ModelStore(tmp_path)
    version = _publish(store, 0.1)
    path = store.version_dir(version) / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(ModelStoreError, match=message):
        store.read_manifest(version)
