"""API settings read from the environment once, typed and validated at the edge; errors name the variable.

Every variable is parsed by the readers of ``core.env`` and the model store and reports paths come from
``core.paths.StorePaths``, the definitions the pipeline publishes by: the API serves from the store its mode's
pipeline writes to.

Election night's live routes read ``core.live.LiveSettings`` (ELECTION_NATS_URL, ELECTION_LIVE_BUCKET, ...), the
settings the replay and the updater read; ``ELECTION_API_LIVE=false`` leaves them out (``live`` is then None).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from election_assets.core.data_modes import DATA_MODES, SYNTHETIC_MODE, DataMode
from election_assets.core.env import (
    SettingsError,
    env_bool,
    env_choice,
    env_int,
    env_number,
    env_optional_text,
    env_text,
)
from election_assets.core.live import LiveSettings
from election_assets.core.paths import StorePaths, drift_summary_path

__all__ = ["ApiSettings", "SettingsError"]
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class ApiSettings:
    model_store_dir: Path
    reports_dir: Path
    data_mode: DataMode = SYNTHETIC_MODE
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_rows: int = 10_000
    max_explain_rows: int = 1_000
    max_concurrent_batches: int = 2
    batch_wait_seconds: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    reload_interval_seconds: float = 2.0
    log_level: str = "INFO"
    explain_top_n: int = 5
    admin_token: str | None = None
    access_log: bool = True
    # Election night's bucket and NATS server (``/live/*`` routes and page); None: no live routes.
    live: LiveSettings | None = None

    @property
    def drift_report_path(self) -> Path | None:
        """The synthetic pipeline's latest drift summary; real mode has none."""
        return drift_summary_path(self.reports_dir) if self.data_mode is SYNTHETIC_MODE else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        data_mode = DATA_MODES[env_choice(env, "ELECTION_API_MODE", SYNTHETIC_MODE.name, tuple(DATA_MODES))]
        paths = StorePaths.from_env(env)
        return cls(
            model_store_dir=paths.model_store_of(data_mode.name),
            reports_dir=paths.reports_dir,
            data_mode=data_mode,
            host=env_text(
                env,
                "HOST",
                "127.0.0.1",
                lambda host: not any(ch.isspace() for ch in host),
                "a host name or IP address without spaces",
            ),
            port=env_int(env, "PORT", 8000, 1, 65535),
            max_batch_rows=env_int(env, "ELECTION_API_MAX_BATCH_ROWS", 10_000, 1, 10_000_000),
            max_explain_rows=env_int(env, "ELECTION_API_MAX_EXPLAIN_ROWS", 1_000, 1, 10_000_000),
            max_concurrent_batches=env_int(env, "ELECTION_API_MAX_CONCURRENT_BATCHES", 2, 1, 1_000),
            batch_wait_seconds=env_number(env, "ELECTION_API_BATCH_WAIT_SECONDS", 10.0, 0.0, 3_600.0),
            max_body_bytes=env_int(env, "ELECTION_API_MAX_BODY_BYTES", 16 * 1024 * 1024, 1024, 1 << 34),
            reload_interval_seconds=env_number(env, "ELECTION_API_RELOAD_INTERVAL_SECONDS", 2.0, 0.01, 86_400.0),
            log_level=env_choice(env, "LOG_LEVEL", "INFO", _LOG_LEVELS),
            explain_top_n=env_int(env, "ELECTION_API_EXPLAIN_TOP_N", 5, 1, 1000),
            admin_token=env_optional_text(env, "ELECTION_API_ADMIN_TOKEN"),
            access_log=env_bool(env, "ELECTION_API_ACCESS_LOG", True),
            live=LiveSettings.from_env(env) if env_bool(env, "ELECTION_API_LIVE", True) else None,
        )
