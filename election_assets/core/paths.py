"""Where the pipeline writes and the API reads: the data directory, the model store of each data mode, the reports.

One definition, read by the pipeline's settings (which publish to these stores) and by the API's (which serves from
them), so both follow the same environment variables to the same places.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from election_assets.core.env import default_data_dir, env_path
from election_assets.core.manifest import REAL

# The drift report's summary that the monitoring asset writes last and the API and ``make demo``'s summary read.
DRIFT_SUMMARY = Path("drift", "latest.json")


def drift_summary_path(reports_dir: Path | str) -> Path:
    return Path(reports_dir) / DRIFT_SUMMARY


@dataclass(frozen=True)
class StorePaths:
    data_dir: Path
    model_store_dir: Path  # synthetic mode's champion (also a file-fed history of the same 14 fields)
    real_model_store_dir: Path  # real mode's county forecaster
    reports_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StorePaths:
        env = os.environ if env is None else env
        data_dir = env_path(env, "ELECTION_DATA_DIR", default_data_dir())
        return cls(
            data_dir=data_dir,
            model_store_dir=env_path(env, "ELECTION_MODEL_STORE", data_dir / "model_store"),
            real_model_store_dir=env_path(env, "ELECTION_REAL_MODEL_STORE", data_dir / "real_model_store"),
            reports_dir=env_path(env, "ELECTION_REPORTS_DIR", data_dir / "reports"),
        )

    @property
    def drift_summary(self) -> Path:
        return drift_summary_path(self.reports_dir)

    @property
    def live_prior_dir(self) -> Path:
        """Election night's priors, one file per year (``live.prior``), written by Dagster, read by the updater."""
        return self.data_dir / "live"

    def live_prior(self, year: int) -> Path:
        return self.live_prior_dir / f"prior_{year}.json"

    def replay_summary(self, year: int) -> Path:
        """What ``make live-demo`` writes after replaying ``year`` and the replay-scoring asset reads."""
        return self.reports_dir / "live" / f"replay_{year}.json"

    def model_store_of(self, data_mode: str) -> Path:
        """The store a data mode's pipeline publishes to and its API serves from."""
        return self.real_model_store_dir if data_mode == REAL else self.model_store_dir
