"""API settings read from the environment once, typed and validated at the edge; errors name the variable."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from election_assets.core.data_modes import DATA_MODES, SYNTHETIC_MODE, DataMode
from election_assets.core.env import SettingsError, default_data_dir, env_number, env_path

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
    max_body_bytes: int = 16 * 1024 * 1024
    reload_interval_seconds: float = 2.0
    log_level: str = "INFO"
    explain_top_n: int = 5
    admin_token: str | None = None
    access_log: bool = True

    @property
    def drift_report_path(self) -> Path | None:
        """The synthetic pipeline's latest drift report; real mode has none."""
        return self.reports_dir / "drift" / "latest.json" if self.data_mode is SYNTHETIC_MODE else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env

        def raw(variable: str) -> str:
            return env.get(variable, "").strip()

        def path(variable: str, default: Path) -> Path:
            return env_path(env, variable, default)

        def integer(variable: str, default: int, low: int, high: int) -> int:
            value = raw(variable)
            if not value:
                return default
            try:
                number = int(value.replace("_", ""))
            except ValueError:
                raise SettingsError(f"{variable}={value!r} must be an integer") from None
            if not low <= number <= high:
                raise SettingsError(f"{variable}={value!r} must be between {low} and {high}")
            return number

        def boolean(variable: str, default: bool) -> bool:
            value = raw(variable).lower()
            if not value:
                return default
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{variable}={value!r} must be true or false")

        level = (raw("LOG_LEVEL") or "INFO").upper()
        if level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={raw('LOG_LEVEL')!r} must be one of {', '.join(_LOG_LEVELS)}")
        host = raw("HOST") or "127.0.0.1"
        if any(ch.isspace() for ch in host):
            raise SettingsError(f"HOST={host!r} must be a host name or IP address without spaces")
        mode_name = (raw("ELECTION_API_MODE") or SYNTHETIC_MODE.name).lower()
        if mode_name not in DATA_MODES:
            raise SettingsError(
                f"ELECTION_API_MODE={raw('ELECTION_API_MODE')!r} must be one of {', '.join(DATA_MODES)}"
            )
        data_mode = DATA_MODES[mode_name]
        data_dir = path("ELECTION_DATA_DIR", default_data_dir())
        # Each mode follows the store its pipeline publishes to (the same variables as election_assets.settings).
        if data_mode is SYNTHETIC_MODE:
            model_store_dir = path("ELECTION_MODEL_STORE", data_dir / "model_store")
        else:
            model_store_dir = path("ELECTION_REAL_MODEL_STORE", data_dir / "real_model_store")
        return cls(
            model_store_dir=model_store_dir,
            reports_dir=path("ELECTION_REPORTS_DIR", data_dir / "reports"),
            data_mode=data_mode,
            host=host,
            port=integer("PORT", 8000, 1, 65535),
            max_batch_rows=integer("ELECTION_API_MAX_BATCH_ROWS", 10_000, 1, 10_000_000),
            max_body_bytes=integer("ELECTION_API_MAX_BODY_BYTES", 16 * 1024 * 1024, 1024, 1 << 34),
            reload_interval_seconds=env_number(env, "ELECTION_API_RELOAD_INTERVAL_SECONDS", 2.0, 0.01, 86_400.0),
            log_level=level,
            explain_top_n=integer("ELECTION_API_EXPLAIN_TOP_N", 5, 1, 1000),
            admin_token=raw("ELECTION_API_ADMIN_TOKEN") or None,
            access_log=boolean("ELECTION_API_ACCESS_LOG", True),
        )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)
