"""The pipeline's settings, read from the environment once through ``core.env``'s typed readers.

``PipelineSettings.from_env()`` and ``Cadence.from_env()`` are called where the code location is defined
(``defs/resources.py`` turns them into the resources the assets and the sensor read, ``defs/automation`` into the
schedules) and by the CLI entry points; no asset or sensor reads the environment itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from election_assets.core.env import SettingsError, env_number, env_path, env_text, env_word
from election_assets.core.live import LiveSettings
from election_assets.core.paths import StorePaths
from election_assets.real.sources import SHIPPED_REAL_DATA_DIR

__all__ = ["DRIFT_SHARE_THRESHOLD", "Cadence", "PipelineSettings", "SettingsError"]

# A drift report flags dataset drift, and the sensor retrains, when at least this share of input columns drifted.
DRIFT_SHARE_THRESHOLD = 0.3
# The cadence of the system this replaces: train weekly, score daily, check drift every 6 hours.
DEFAULT_CRONS = {
    "ELECTION_CRON_TRAINING": "0 3 * * 1",
    "ELECTION_CRON_SCORING": "0 6 * * *",
    "ELECTION_CRON_DRIFT": "0 */6 * * *",
}


def _is_valid_cron(value: str) -> bool:
    # Dagster's own check (the one ScheduleDefinition applies): private, but the only way to reject a cron string
    # Dagster would refuse (out-of-range fields, 6-field strings, February 30th) as a SettingsError naming the
    # variable, instead of a definition error while the code location loads. Imported here, not at the top, so
    # the CLI summaries that read these settings do not pay for importing Dagster.
    from dagster._utils.schedules import is_valid_cron_string

    return is_valid_cron_string(value)


def _cron(env: Mapping[str, str], variable: str) -> str:
    return env_text(
        env,
        variable,
        DEFAULT_CRONS[variable],
        _is_valid_cron,
        "a valid cron string with 5 fields in range, for example '0 */6 * * *'",
    )


@dataclass(frozen=True)
class Cadence:
    """How often the loop runs: the schedules' cron strings and the drift sensor's retraining trigger."""

    training_cron: str
    scoring_cron: str
    drift_cron: str
    timezone: str
    # Retrain when at least this share of input columns drifted (the drift report's ``drift_share``).
    retrain_drift_share: float
    # Never start a retraining sooner than this after the previous one the sensor started.
    retrain_cooldown_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Cadence:
        env = os.environ if env is None else env
        return cls(
            training_cron=_cron(env, "ELECTION_CRON_TRAINING"),
            scoring_cron=_cron(env, "ELECTION_CRON_SCORING"),
            drift_cron=_cron(env, "ELECTION_CRON_DRIFT"),
            timezone=env_text(env, "ELECTION_SCHEDULE_TIMEZONE", "UTC"),
            retrain_drift_share=env_number(env, "ELECTION_RETRAIN_DRIFT_SHARE", DRIFT_SHARE_THRESHOLD, 0.0, 1.0),
            retrain_cooldown_seconds=60 * env_number(env, "ELECTION_RETRAIN_COOLDOWN_MINUTES", 360, 0, 60 * 24 * 30),
        )


@dataclass(frozen=True)
class PipelineSettings:
    paths: StorePaths
    mlflow_tracking_uri: str
    mlflow_artifact_location: str
    mlflow_experiment: str
    registered_model_name: str
    real_data_dir: Path
    # The polls feed: every CSV dropped here is ingested and re-forecasts the campaign (docs/real-mode.md).
    polls_inbox_dir: Path
    # Election night: NATS, the results stream, the live bucket, the call threshold (docs/election-night.md).
    live: LiveSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        env = os.environ if env is None else env
        paths = StorePaths.from_env(env)
        mlflow_dir = paths.data_dir / "mlflow"
        return cls(
            paths=paths,
            mlflow_tracking_uri=env_text(env, "MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}"),
            mlflow_artifact_location=env_text(env, "ELECTION_MLFLOW_ARTIFACTS", (mlflow_dir / "artifacts").as_uri()),
            mlflow_experiment=env_word(env, "ELECTION_MLFLOW_EXPERIMENT", "election-forecasting"),
            registered_model_name=env_word(env, "ELECTION_REGISTERED_MODEL", "election-winner"),
            real_data_dir=env_path(env, "ELECTION_REAL_DATA_DIR", SHIPPED_REAL_DATA_DIR),
            polls_inbox_dir=env_path(env, "ELECTION_POLLS_INBOX", paths.data_dir / "polls_inbox"),
            live=LiveSettings.from_env(env),
        )

    # The paths are read through ``paths``; these name the ones the CLI summaries and the tests use most.
    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def model_store_dir(self) -> Path:
        return self.paths.model_store_dir

    @property
    def real_model_store_dir(self) -> Path:
        return self.paths.real_model_store_dir

    @property
    def reports_dir(self) -> Path:
        return self.paths.reports_dir
