"""How often the loop runs: cron strings and the retraining trigger, in one place, overridable by environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Dagster's own check (the one ScheduleDefinition applies): private, but the only way to reject a cron string
# Dagster would refuse (out-of-range fields, 6-field strings, February 30th) as a SettingsError naming the
# variable, instead of a definition error while the code location loads.
from dagster._utils.schedules import is_valid_cron_string

from election_assets.core.env import SettingsError, env_number

# The cadence of the system this replaces: train weekly, score daily, check drift every 6 hours.
DEFAULT_CRONS = {
    "ELECTION_CRON_TRAINING": "0 3 * * 1",
    "ELECTION_CRON_SCORING": "0 6 * * *",
    "ELECTION_CRON_DRIFT": "0 */6 * * *",
}


def _cron(env: Mapping[str, str], variable: str) -> str:
    value = env.get(variable, "").strip() or DEFAULT_CRONS[variable]
    if not is_valid_cron_string(value):
        raise SettingsError(
            f"{variable}={value!r} must be a valid cron string with 5 fields in range, for example '0 */6 * * *'"
        )
    return value


@dataclass(frozen=True)
class Cadence:
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
            timezone=env.get("ELECTION_SCHEDULE_TIMEZONE", "").strip() or "UTC",
            retrain_drift_share=env_number(env, "ELECTION_RETRAIN_DRIFT_SHARE", 0.3, 0.0, 1.0),
            retrain_cooldown_seconds=60 * env_number(env, "ELECTION_RETRAIN_COOLDOWN_MINUTES", 360, 0, 60 * 24 * 30),
        )
