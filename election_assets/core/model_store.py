"""The model store shared by the champion asset (writer) and the API (reader).

Layout under the store root::

    versions/<version>/manifest.json   what the model is: metrics, features, input schema, checksums, lineage
    versions/<version>/model.npz       the compiled model (see ``compiled_model``), loaded without pickle
    versions/<version>/holdout.csv     the held-out rows the manifest's test metrics were computed on
    LATEST                             {"version": ...}: the pointer the API follows
    .staging/                          versions being written; never read

A version is written completely inside ``.staging`` and then renamed into ``versions/`` (one atomic rename on
the same filesystem), and only then is ``LATEST`` replaced (write-to-temp + ``os.replace``, also atomic). A
crash at any point leaves ``LATEST`` naming the previous complete version. Readers verify every file's
SHA-256 against the manifest before they use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from election_assets.core.compiled_model import CompiledModel, load_compiled_model
from election_assets.core.data_modes import DataMode, data_mode_of
from election_assets.core.manifest import FileDigest, ManifestError, ModelManifest, ReferencePredictions

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.npz"
HOLDOUT_FILE = "holdout.csv"
POINTER_FILE = "LATEST"
# Version ids as ``new_version_id`` makes them; the pointer and every reader accept nothing else, so a pointer can
# never lead outside ``versions/``.
VERSION_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
# How many held-out rows a manifest's reference predictions hold, and how close a loaded model must come to them
# (the same compiled arrays give the same float64 results; the margin covers another NumPy build's summation order).
REFERENCE_ROWS = 32
REFERENCE_TOLERANCE = 1e-6


class ModelStoreError(Exception):
    """The store, a version or its pointer is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class StoredModel:
    version: str
    manifest: ModelManifest
    model: CompiledModel
    path: Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_version_id(now: datetime | None = None) -> str:
    """Sortable, unique version ids: UTC timestamp plus a random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


class ModelStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def pointer_path(self) -> Path:
        return self.root / POINTER_FILE

    def version_dir(self, version: str) -> Path:
        if not VERSION_ID.fullmatch(version):
            raise ModelStoreError(
                f"{version!r} is not a version id of this store (like 20261128T134520-bceaeb); refusing to read it"
            )
        return self.versions_dir / version

    # -- writing -----------------------------------------------------------------------------------------------

    def publish(
        self,
        manifest: ModelManifest,
        write_artifacts: Callable[[Path], None],
        version: str | None = None,
        make_latest: bool = True,
    ) -> str:
        """Write a new version and (by default) point ``LATEST`` at it; returns the version id.

        ``write_artifacts(directory)`` writes the model files into a staging directory; the manifest, completed
        with each file's checksum, is written last. Nothing is visible to readers until the final renames.
        """
        version = version or new_version_id()
        staging = self.root / ".staging" / f"{version}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            write_artifacts(staging)
            files = {
                path.name: FileDigest(sha256=sha256_of(path), bytes=path.stat().st_size)
                for path in sorted(staging.iterdir())
                if path.is_file()
            }
            if MODEL_FILE not in files:
                raise ModelStoreError(f"write_artifacts did not write {MODEL_FILE}")
            (staging / MANIFEST_FILE).write_text(manifest.published(version, files).to_json())
            for path in staging.iterdir():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            os.rename(staging, self.version_dir(version))
            _fsync_dir(self.versions_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if make_latest:
            self.point_latest_to(version)
        return version

    def point_latest_to(self, version: str) -> None:
        if not (self.version_dir(version) / MANIFEST_FILE).is_file():
            raise ModelStoreError(f"cannot point LATEST at {version!r}: no complete version with that id")
        temporary = self.root / f".{POINTER_FILE}.{uuid.uuid4().hex[:8]}"
        payload = {"version": version, "updated_at": datetime.now(UTC).isoformat()}
        with open(temporary, "w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.pointer_path)
        _fsync_dir(self.root)

    def discard_stale_staging(self, older_than_seconds: float = 0.0) -> int:
        """Remove leftovers of writers that crashed; returns how many were removed.

        ``older_than_seconds`` spares directories a concurrent writer may still be filling.
        """
        staging_root = self.root / ".staging"
        if not staging_root.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        leftovers = [path for path in staging_root.iterdir() if path.stat().st_mtime <= cutoff]
        for leftover in leftovers:
            shutil.rmtree(leftover, ignore_errors=True)
        return len(leftovers)

    # -- reading -----------------------------------------------------------------------------------------------

    def latest_version(self) -> str | None:
        try:
            pointer = json.loads(self.pointer_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ModelStoreError(f"pointer {self.pointer_path} is unreadable: {error}") from error
        version = pointer.get("version") if isinstance(pointer, dict) else None
        if not isinstance(version, str) or not version:
            raise ModelStoreError(f"pointer {self.pointer_path} does not name a version")
        return version

    def list_versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        names = (path.name for path in self.versions_dir.iterdir() if (path / MANIFEST_FILE).is_file())
        return sorted(name for name in names if VERSION_ID.fullmatch(name))

    def read_manifest(self, version: str) -> ModelManifest:
        path = self.version_dir(version) / MANIFEST_FILE
        try:
            return ModelManifest.from_json(path.read_text())
        except FileNotFoundError as error:
            raise ModelStoreError(f"version {version!r} has no manifest at {path}") from error
        except (OSError, ManifestError) as error:
            raise ModelStoreError(f"manifest of version {version!r} is unreadable: {error}") from error

    def load(self, version: str | None = None) -> StoredModel:
        """Load and verify a version (default: the one ``LATEST`` names)."""
        version = version or self.latest_version()
        if version is None:
            raise ModelStoreError(f"no model published yet: {self.pointer_path} does not exist")
        manifest = self.read_manifest(version)
        directory = self.version_dir(version)
        for name, expected in manifest.files.items():
            path = directory / name
            if not path.is_file():
                raise ModelStoreError(f"version {version!r}: file {name} listed in the manifest is missing")
            actual = sha256_of(path)
            if actual != expected.sha256:
                raise ModelStoreError(
                    f"version {version!r}: checksum mismatch for {name} (manifest {expected.sha256[:12]}..., "
                    f"file {actual[:12]}...): the file is corrupt or was changed after publishing"
                )
        if MODEL_FILE not in manifest.files:
            raise ModelStoreError(f"version {version!r}: manifest does not list {MODEL_FILE}")
        expected = data_mode_of(manifest).model_columns
        if manifest.feature_names != list(expected):
            raise ModelStoreError(
                f"version {version!r}: manifest feature list does not match this code's feature module "
                f"({len(manifest.feature_names)} vs {len(expected)} features); retrain or deploy matching code"
            )
        try:
            model = load_compiled_model(directory / MODEL_FILE)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            # A truncated or foreign file whose checksum was recorded as it is: np.load raises these.
            raise ModelStoreError(
                f"version {version!r}: model file is unreadable: {type(error).__name__}: {error}"
            ) from error
        if model.n_features != len(expected):
            raise ModelStoreError(f"version {version!r}: model expects {model.n_features} features")
        _verify_reference(version, model, data_mode_of(manifest), manifest.reference)
        return StoredModel(version=version, manifest=manifest, model=model, path=directory)


def reference_predictions(model: CompiledModel, mode: DataMode, inputs: np.ndarray) -> ReferencePredictions:
    """What ``model`` answers for ``inputs`` (rows of ``mode``'s input fields, NaN for an absent optional field),
    recorded in the manifest when the model is published."""
    probabilities = model.predict_proba_a(mode.features(inputs))
    return ReferencePredictions(
        inputs=[[None if math.isnan(value) else value for value in row] for row in inputs.tolist()],
        p_candidate_a=probabilities.tolist(),
        tolerance=REFERENCE_TOLERANCE,
    )


def _verify_reference(version: str, model: CompiledModel, mode: DataMode, reference: ReferencePredictions) -> None:
    expected = np.asarray(reference.p_candidate_a, dtype=np.float64)
    inputs = np.asarray([[np.nan if v is None else v for v in row] for row in reference.inputs], dtype=np.float64)
    if expected.size == 0 or inputs.shape != (expected.size, len(mode.input_fields)):
        raise ModelStoreError(
            f"version {version!r}: the manifest's reference predictions are malformed "
            f"({inputs.shape} inputs for {expected.size} probabilities, {len(mode.input_fields)} fields per row)"
        )
    try:
        with np.errstate(all="ignore"):  # a garbage model overflows; its answer is judged below, not warned about
            actual = model.predict_proba_a(mode.features(inputs))
    except Exception as error:  # inconsistent arrays fail here, before any request reaches them
        raise ModelStoreError(f"version {version!r}: model cannot score its reference rows: {error}") from error
    gap = np.abs(actual - expected)
    off = np.flatnonzero(~(gap <= reference.tolerance))  # NaN counts as off
    if off.size:
        row = int(off[0])
        raise ModelStoreError(
            f"version {version!r}: the model does not reproduce what it predicted when it was evaluated: "
            f"{off.size} of {expected.size} reference rows differ, row {row} gives {actual[row]:.6g} where the "
            f"manifest recorded {expected[row]:.6g} (tolerance {reference.tolerance:g}); the model file is not the "
            "model that was evaluated"
        )
