"""Hot swap without a restart, and faults that must leave the current model serving."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar.testing import TestClient

from election_api.app import create_app
from election_api_tests.conftest import VALID_ROW, LiveServer, free_port, make_client, metric_value, publish
from election_assets.core.compiled_model import load_compiled_model, save_compiled_model
from election_assets.core.manifest import FileDigest
from election_assets.core.model_store import MANIFEST_FILE, MODEL_FILE, ModelStore, sha256_of


def test_hot_swap_under_concurrent_load(settings, store_dir, trained, champion):

    published = [champion]
    with LiveServer(replace(settings, reload_interval_seconds=0.05)) as server:
        stop = threading.Event()
        answers: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()

        def hammer(batch: bool) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        if batch:
                            response = http.post("/predict/batch", json={"rows": [VALID_ROW] * 200})
                        else:
                            response = http.post("/predict", json=VALID_ROW)
                    except httpx.HTTPError as error:  # a dropped connection is a failed request too
                        with lock:
                            failures.append(repr(error))
                        continue
                    with lock:
                        if response.status_code != 200:
                            failures.append(f"{response.status_code} {response.text}")
                        elif batch:  # one model answers a whole batch, even when a swap happens meanwhile
                            body = response.json()
                            rows = {p["model_version"] for p in body["predictions"]}
                            if rows != {body["model_version"]}:
                                failures.append(f"a batch mixed models: {rows}")
                            batch_answers.append(body["model_version"])
                        else:
                            answers.append(response.json()["model_version"])

        batch_answers: list[str] = []
        threads = [threading.Thread(target=hammer, args=(index == 0,)) for index in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        for model in (trained.trees, trained.linear, trained.trees):
            published.append(publish(store_dir, model, trained))
            time.sleep(0.4)
        deadline = time.monotonic() + 5
        while server.app.manager.current.version != published[-1] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(answers) > 50
    assert set(answers) <= set(published), set(answers) - set(published)
    assert answers[-1] == published[-1]
    assert len(set(answers)) >= 3  # the swaps were seen while requests ran
    assert batch_answers and set(batch_answers) <= set(published)


def _point_latest_at(store_dir: Path, version: str) -> None:
    temporary = store_dir / ".LATEST.test"
    temporary.write_text(json.dumps({"version": version}))
    temporary.replace(store_dir / "LATEST")


def _corrupt_model(store_dir: Path, version: str) -> None:
    path = store_dir / "versions" / version / MODEL_FILE
    path.write_bytes(b"not a numpy archive")


def _truncate_model(store_dir: Path, version: str) -> None:
    path = store_dir / "versions" / version / MODEL_FILE
    path.write_bytes(path.read_bytes()[:100])


def _rewrite_manifest(store_dir: Path, version: str, **changes) -> None:
    store = ModelStore(store_dir)
    manifest = store.read_manifest(version)
    (store.version_dir(version) / MANIFEST_FILE).write_text(replace(manifest, **changes).to_json())


def _truncate_and_rehash(store_dir: Path, version: str) -> None:
    # A writer that hashed a truncated file: checksums pass, the archive itself cannot be read.
    path = store_dir / "versions" / version / MODEL_FILE
    path.write_bytes(path.read_bytes()[:100])
    files = ModelStore(store_dir).read_manifest(version).files | {MODEL_FILE: FileDigest(sha256_of(path), 100)}
    _rewrite_manifest(store_dir, version, files=files)


def _garbage_model_rehashed(store_dir: Path, version: str) -> None:
    # Every tree leaf set to 1e308, written as a valid archive, and the manifest's checksums recomputed: every file
    # check passes, only the reference predictions the manifest recorded show the model is not the evaluated one.
    path = store_dir / "versions" / version / MODEL_FILE
    model = load_compiled_model(path)
    save_compiled_model(replace(model, value=np.full_like(model.value, 1e308)), path)
    files = ModelStore(store_dir).read_manifest(version).files | {
        MODEL_FILE: FileDigest(sha256_of(path), path.stat().st_size)
    }
    _rewrite_manifest(store_dir, version, files=files)
    ModelStore(store_dir).read_manifest(version)  # the manifest itself is valid


def _latest_outside_the_store(store_dir: Path, trained) -> None:
    # A complete, valid version published in another store beside this one, and LATEST leading there with ``..``.
    elsewhere = publish(store_dir.parent / "elsewhere", trained.trees, trained)
    _point_latest_at(store_dir, f"../../elsewhere/versions/{elsewhere}")


def _wrong_manifest_type(store_dir: Path, version: str) -> None:
    # Written by something other than ModelManifest.to_json: the JSON itself is edited.
    path = store_dir / "versions" / version / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["training_rows"] = "three thousand"
    path.write_text(json.dumps(manifest))


def _wrong_features(store_dir: Path, version: str) -> None:
    feature_names = ModelStore(store_dir).read_manifest(version).feature_names
    _rewrite_manifest(store_dir, version, feature_names=feature_names[:-1])


FAULTS = {
    "missing version": (lambda store, trained: _point_latest_at(store, "20990101T000000-abcdef"), "no manifest"),
    "corrupt model.npz": (None, "checksum mismatch"),
    "truncated model.npz": (None, "checksum mismatch"),
    "truncated model.npz, checksum of the truncated file": (None, "model file is unreadable"),
    "feature mismatch": (None, "feature list does not match"),
    "manifest field of the wrong type": (None, "manifest.training_rows must be an integer"),
    "unreadable LATEST": (lambda store, trained: (store / "LATEST").write_text("{not json"), "unreadable"),
    "garbage model, checksums recomputed": (None, "does not reproduce what it predicted when it was evaluated"),
    "LATEST leading outside the store": (_latest_outside_the_store, "is not a version id of this store"),
}
# Faults planted in a complete new version that LATEST then names.
VERSION_FAULTS = {
    "corrupt model.npz": _corrupt_model,
    "truncated model.npz": _truncate_model,
    "truncated model.npz, checksum of the truncated file": _truncate_and_rehash,
    "feature mismatch": _wrong_features,
    "manifest field of the wrong type": _wrong_manifest_type,
    "garbage model, checksums recomputed": _garbage_model_rehashed,
}


def _plant(fault: str, store_dir: Path, trained) -> str | None:
    """Make LATEST name a broken model (or break LATEST itself); returns the broken version, if any."""
    if fault in VERSION_FAULTS:
        version = publish(store_dir, trained.trees, trained, make_latest=False)
        VERSION_FAULTS[fault](store_dir, version)
        _point_latest_at(store_dir, version)
        return version
    FAULTS[fault][0](store_dir, trained)
    return None


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_bad_new_version_keeps_the_old_model_serving(settings, store_dir, trained, champion, fault, caplog):
    with make_client(settings) as client:
        broken = _plant(fault, store_dir, trained)
        # Litestar's start-up logging config replaces the root handlers (and so caplog's): listen on the logger.
        logger = logging.getLogger("election_api")
        logger.addHandler(caplog.handler)
        try:
            client.app.manager.poll_once()
            client.app.manager.poll_once()  # a repeated failure is counted and logged once
        finally:
            logger.removeHandler(caplog.handler)
        (record,) = [r for r in caplog.records if getattr(r, "event", None) == "model_load_failed"]
        assert record.serving_version == champion and FAULTS[fault][1] in record.error
        if broken:
            assert record.attempted_version == broken

        response = client.post("/predict", json=VALID_ROW)
        assert response.status_code == 200 and response.json()["model_version"] == champion
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert FAULTS[fault][1] in ready.json()["last_error"]["error"]
        assert ready.json()["model_version"] == champion
        text = client.get("/metrics").text
        assert metric_value(text, "election_model_reload_failures_total") == 1.0
        assert metric_value(text, "election_model_loaded") == 1.0

        # Repairing the store (a good champion published) recovers without a restart and clears the error.
        good = publish(store_dir, trained.trees, trained)
        client.app.manager.poll_once()
        assert client.get("/ready").json()["last_error"] is None
        assert client.post("/predict", json=VALID_ROW).json()["model_version"] == good


def test_a_version_corrupted_after_loading_is_not_reloaded(settings, store_dir, trained, champion):
    # Checksums are verified when a version is loaded; the loaded copy lives in memory and keeps serving.
    with make_client(settings) as client:
        _corrupt_model(store_dir, champion)
        client.app.manager.poll_once()
        assert client.post("/predict", json=VALID_ROW).status_code == 200


def test_empty_store_starts_unready_and_recovers(settings, store_dir, trained):
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert "no model published yet" in ready.json()["last_error"]["error"]
        for path in ("/predict", "/predict/batch"):
            response = client.post(path, json=VALID_ROW if path == "/predict" else {"rows": [VALID_ROW]})
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert "no valid model is loaded" in response.json()["detail"]
            assert "no model published yet" in response.json()["errors"][0]["reason"]
        assert client.get("/model/info").status_code == 503
        assert metric_value(client.get("/metrics").text, "election_model_loaded") == 0.0

        version = publish(store_dir, trained.linear, trained)
        client.app.manager.poll_once()
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=VALID_ROW).json()["model_version"] == version


@pytest.mark.parametrize("fault", list(VERSION_FAULTS))
def test_start_up_with_only_a_broken_model_is_unready_not_a_crash(settings, store_dir, trained, fault):
    broken = _plant(fault, store_dir, trained)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert ready.json()["last_error"]["attempted_version"] == broken
        assert FAULTS[fault][1] in ready.json()["last_error"]["error"]
        response = client.post("/predict", json=VALID_ROW)
        assert response.status_code == 503 and FAULTS[fault][1] in response.json()["errors"][0]["reason"]
        text = client.get("/metrics").text
        assert metric_value(text, "election_model_loaded") == 0.0
        assert metric_value(text, "election_model_reload_failures_total") == 1.0

        good = publish(store_dir, trained.linear, trained)  # a good champion: ready without a restart
        client.app.manager.poll_once()
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=VALID_ROW).json()["model_version"] == good


def test_a_model_whose_outputs_are_not_probabilities_is_refused(settings, store_dir, trained, champion):
    # Published with its own (consistent) reference predictions: only their range shows they are not probabilities.
    forest = replace(trained.trees, aggregation="mean_probability", value=np.full_like(trained.trees.value, 2.0))
    with make_client(settings) as client:
        broken = publish(store_dir, forest, trained, accuracy=0.5)
        client.app.manager.poll_once()
        ready = client.get("/ready").json()
        assert ready["model_version"] == champion and ready["last_error"]["attempted_version"] == broken
        assert "not a probability" in ready["last_error"]["error"]


def test_latest_leading_outside_the_store_is_never_served(settings, store_dir, trained):
    # The version beyond ``..`` is complete and valid: only the pointer's form says it is not this store's.
    _latest_outside_the_store(store_dir, trained)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["model_version"] is None
        assert "is not a version id of this store" in ready.json()["last_error"]["error"]
        assert client.get("/").json()["model_version"] is None
        response = client.post("/predict", json=VALID_ROW)
        assert response.status_code == 503 and "is not a version id" in response.json()["errors"][0]["reason"]
        assert client.get("/model/info").status_code == 503


def test_missing_store_directory_starts_unready(settings, tmp_path):

    with TestClient(create_app(replace(settings, model_store_dir=tmp_path / "does-not-exist"))) as client:
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json=VALID_ROW).status_code == 503


def test_background_poller_picks_up_a_new_champion(settings, store_dir, trained, champion):

    with TestClient(create_app(replace(settings, reload_interval_seconds=0.05))) as client:
        assert client.post("/predict", json=VALID_ROW).json()["model_version"] == champion
        new_version = publish(store_dir, trained.trees, trained)
        deadline = time.monotonic() + 5
        while client.post("/predict", json=VALID_ROW).json()["model_version"] != new_version:
            assert time.monotonic() < deadline, "the poller did not swap to the new champion"
            time.sleep(0.05)


def test_module_entry_point_serves_and_reloads_on_sighup(store_dir, tmp_path, trained, champion):
    port = free_port()
    env = {
        **os.environ,
        "ELECTION_MODEL_STORE": str(store_dir),
        "ELECTION_REPORTS_DIR": str(tmp_path / "reports"),
        "PORT": str(port),
        "ELECTION_API_RELOAD_INTERVAL_SECONDS": "3600",  # only SIGHUP can trigger the reload in time
    }
    process = subprocess.Popen([sys.executable, "-m", "election_api"], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server did not become ready"
            time.sleep(0.05)
        new_version = publish(store_dir, trained.trees, trained)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while httpx.get(f"{url}/ready").json()["model_version"] != new_version:
            assert time.monotonic() < deadline, "SIGHUP did not trigger a reload"
            time.sleep(0.05)
        answer = httpx.post(f"{url}/predict", json=VALID_ROW, headers={"X-Request-ID": "trace-42"})
        assert answer.json()["model_version"] == new_version and answer.headers["x-request-id"] == "trace-42"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert any(
        record.get("event") == "model_loaded" and record.get("model_version") == new_version for record in records
    )
    access = [record for record in records if record.get("logger") == "election_api.access"]
    assert access and all(record.get("request_id") for record in access)
    (traced,) = [record for record in access if record["request_id"] == "trace-42"]
    assert (traced["path"], traced["route"], traced["status"]) == ("/predict", "/predict", 200)


def test_invalid_configuration_fails_fast_naming_the_variable(tmp_path):
    env = {**os.environ, "ELECTION_API_MAX_BATCH_ROWS": "lots"}
    result = subprocess.run([sys.executable, "-m", "election_api"], env=env, capture_output=True, timeout=30)
    assert result.returncode == 2
    assert b"ELECTION_API_MAX_BATCH_ROWS" in result.stderr
