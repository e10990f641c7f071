"""Pipeline settings read from the environment once, validated, with errors that name the variable and the fix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from election_assets.core.env import SettingsError, default_data_dir, env_path

__all__ = ["SHIPPED_REAL_DATA_DIR", "PipelineSettings", "SettingsError"]

# The real-mode source files shipped inside the package (see election_assets/real/sources/README.md).
SHIPPED_REAL_DATA_DIR = Path(__file__).resolve().parent / "real" / "sources"


@dataclass(frozen=True)
class PipelineSettings:
    data_dir: Path
    model_store_dir: Path
    reports_dir: Path
    mlflow_tracking_uri: str
    mlflow_artifact_location: str
    mlflow_experiment: str
    registered_model_name: str
    real_data_dir: Path
    real_model_store_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        env = os.environ if env is None else env

        def path(variable: str, default: Path) -> Path:
            return env_path(env, variable, default)

        def name(variable: str, default: str) -> str:
            value = env.get(variable, "").strip() or default
            if any(ch.isspace() for ch in value) or "/" in value:
                raise SettingsError(f"{variable}={value!r} must be a single word without spaces or slashes")
            return value

        data_dir = path("ELECTION_DATA_DIR", default_data_dir())
        mlflow_dir = data_dir / "mlflow"
        return cls(
            data_dir=data_dir,
            model_store_dir=path("ELECTION_MODEL_STORE", data_dir / "model_store"),
            reports_dir=path("ELECTION_REPORTS_DIR", data_dir / "reports"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", "").strip() or f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            mlflow_artifact_location=env.get("ELECTION_MLFLOW_ARTIFACTS", "").strip()
            or (mlflow_dir / "artifacts").as_uri(),
            mlflow_experiment=name("ELECTION_MLFLOW_EXPERIMENT", "election-forecasting"),
            registered_model_name=name("ELECTION_REGISTERED_MODEL", "election-winner"),
            real_data_dir=path("ELECTION_REAL_DATA_DIR", SHIPPED_REAL_DATA_DIR),
            real_model_store_dir=path("ELECTION_REAL_MODEL_STORE", data_dir / "real_model_store"),
        )
