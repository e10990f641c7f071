"""The model store contract: complete versions only, an atomic LATEST pointer, verified loads, crash safety."""

import json
import multiprocessing
import os

import numpy as np
import pytest

from election_assets.core.compiled_model import LinearModel, save_compiled_model
from election_assets.core.data_modes import SYNTHETIC_MODE
from election_assets.core.features import FEATURE_NAMES
from election_assets.core.manifest import SYNTHETIC, ModelManifest, SourceRun
from election_assets.core.model_store import MODEL_FILE, ModelStore, ModelStoreError, reference_predictions
from election_assets.core.schema import INPUT_FIELD_NAMES
from election_assets.core.synthetic import generate_regions

REFERENCE_INPUTS = generate_regions(8, seed=3)[list(INPUT_FIELD_NAMES)].to_numpy(np.float64)


def _manifest(
    accuracy: float = 0.5, feature_names: tuple[str, ...] = FEATURE_NAMES, offset: float = 0.1
) -> ModelManifest:
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
        reference=reference_predictions(_model(offset), SYNTHETIC_MODE, REFERENCE_INPUTS),
    )


_REFERENCE_FEATURES = SYNTHETIC_MODE.features(REFERENCE_INPUTS)


def _model(offset: float) -> LinearModel:
    # Standardised on the reference rows, so its probabilities stay well inside (0, 1) and a change shows.
    mean, scale = _REFERENCE_FEATURES.mean(axis=0), _REFERENCE_FEATURES.std(axis=0) + 1.0
    return LinearModel(mean=mean, scale=scale, coef=np.full(len(FEATURE_NAMES), 0.01), intercept=offset)


def _publish(store: ModelStore, offset: float) -> str:
    return store.publish(
        _manifest(offset, offset=offset),
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
        ModelStore(tmp_path).point_latest_to("20990101T000000-abcdef")


@pytest.mark.parametrize("pointer", ["../../elsewhere/versions/20990101T000000-abcdef", "/etc", "v1", ""])
def test_a_pointer_to_anything_but_a_version_id_is_refused(tmp_path, pointer):
    store = ModelStore(tmp_path / "store")
    _publish(store, 0.1)
    elsewhere = ModelStore(tmp_path / "elsewhere")
    _publish(elsewhere, 0.9)  # a complete, valid version outside the store
    store.pointer_path.write_text(json.dumps({"version": pointer}))
    with pytest.raises(ModelStoreError, match="not a version id of this store|does not name a version"):
        store.load()


def _publish_model(store: ModelStore, model: LinearModel, manifest: ModelManifest) -> str:
    return store.publish(manifest, lambda directory: save_compiled_model(model, directory / MODEL_FILE))


def test_a_model_that_does_not_reproduce_its_reference_predictions_is_refused(tmp_path):
    # Right checksums, wrong numbers: the file is the one written, but not the model that was evaluated.
    store = ModelStore(tmp_path)
    good = _publish(store, 0.1)
    garbage = _model(0.1)
    garbage = LinearModel(garbage.mean, garbage.scale, np.full_like(garbage.coef, 1e308), 1e308)
    bad = _publish_model(store, garbage, _manifest(offset=0.1))
    with pytest.raises(ModelStoreError, match="does not reproduce what it predicted when it was evaluated"):
        store.load(bad)
    assert store.load(good).version == good


def test_a_model_within_the_tolerance_of_its_reference_is_accepted(tmp_path):
    store = ModelStore(tmp_path)
    nudged = _model(0.1 + 1e-9)  # a different summation order moves the last digits, not the answer
    version = _publish_model(store, nudged, _manifest(offset=0.1))
    assert store.load(version).version == version
    off = _publish_model(store, _model(0.1 + 1e-3), _manifest(offset=0.1))
    with pytest.raises(ModelStoreError, match="8 of 8 reference rows differ"):
        store.load(off)


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
