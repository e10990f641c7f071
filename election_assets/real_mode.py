"""Materialize the real-mode graph in order on the project's Dagster instance: ``python -m election_assets.real_mode``.

The runs land in the same instance as ``make ui`` reads (``$DAGSTER_HOME``), so every run, partition and check
shows up in the UI afterwards. Exits non-zero as soon as a run fails.
"""

from __future__ import annotations

import json
import sys
import time

import dagster as dg

from election_assets.core.model_store import ModelStore
from election_assets.launch import launch
from election_assets.real.backtest import BACKTEST_YEARS, format_gain
from election_assets.real.campaign import CAMPAIGN_END
from election_assets.real.features import FEATURE_YEARS, NEXT_ELECTION
from election_assets.real.poll_average import PollWeighting
from election_assets.settings import PipelineSettings
from election_assets.summary import mlflow_browsing

STEPS: tuple[tuple[str, tuple[object, ...] | None], ...] = (
    ("real_ingest", None),
    ("real_features", FEATURE_YEARS),
    ("real_backtest", BACKTEST_YEARS),
    ("real_forecast", None),
    # The forecast of the day before the election; any other day of the campaign is a partition to pick in the UI.
    ("real_daily_forecast", (CAMPAIGN_END,)),
    # Election night's prior of the next election, the file `make live` (the live updater) loads.
    ("live_prior", (NEXT_ELECTION,)),
)


def run_all(instance: dg.DagsterInstance) -> None:
    for job_name, partitions in STEPS:
        for partition in partitions or (None,):
            label = job_name if partition is None else f"{job_name} [{partition}]"
            print(f"-> {label}", flush=True)
            started = time.monotonic()
            result = launch(job_name, instance, partition_key=None if partition is None else str(partition))
            if not result.success:
                raise SystemExit(f"{label} failed (run {result.run_id}); see it in the Dagster UI (make ui)")
            print(f"   done in {time.monotonic() - started:.1f} s (run {result.run_id})", flush=True)


def render(settings: PipelineSettings) -> str:
    real = settings.reports_dir / "real"
    electoral = json.loads((real / "forecast" / f"electoral_votes_{NEXT_ELECTION}.json").read_text())
    low, high = electoral["candidate_a_votes_90pct"]
    pooled = json.loads((real / "backtest.json").read_text())["pooled_vote_weighted_gain"]
    years = pooled["years"]
    store = ModelStore(settings.real_model_store_dir)
    hyperparameters = store.read_manifest(store.latest_version()).hyperparameters
    weighting = PollWeighting.from_params(hyperparameters)
    return "\n".join(
        [
            f"Backtest table : {real / 'backtest.md'}",
            (real / "backtest.md").read_text().rstrip(),
            f"  vote-weighted accuracy vs persistence, {years[0]}-{years[-1]} pooled: {format_gain(pooled)}",
            f"Calibration    : {real / 'backtest'}/<year>/calibration.png",
            f"Forecast {NEXT_ELECTION}  : {real / 'forecast'}/forecast_county_{NEXT_ELECTION}.csv, "
            f"forecast_state_{NEXT_ELECTION}.csv",
            f"  as of {electoral['as_of']}: the Democratic candidate wins with probability "
            f"{electoral['p_candidate_a_wins']:.2f}; electoral votes median "
            f"{electoral['candidate_a_votes_median']:.0f} (90% interval {low:.0f}-{high:.0f})",
            f"Maps           : {real / 'forecast'}/map_{{state,county}}_{{share,probability}}_{NEXT_ELECTION}.png",
            f"Timeline       : {real}/timeline_{NEXT_ELECTION}.png and .csv (the forecast of every campaign day)",
            f"Served model   : {settings.real_model_store_dir} (make serve-real: the API in real mode on it)",
            f"  relative swing: {hyperparameters['relative_swing']}; poll weighting: {weighting.label}; both chosen "
            "by walk forward inside its training elections (docs/generated/real_backtest.md)",
            f"Election night : {settings.paths.live_prior(NEXT_ELECTION)} (make live follows {NEXT_ELECTION} from it; "
            "make live-demo YEAR=2016 replays a past night)",
            f"MLflow store   : {settings.mlflow_tracking_uri} (experiment {settings.mlflow_experiment}-real)",
            *mlflow_browsing(settings.mlflow_tracking_uri, f"{settings.mlflow_experiment}-real"),
            "Dagster UI     : make ui, then open http://127.0.0.1:3000 (groups real_ingest and real)",
        ]
    )


def main() -> None:
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        run_all(instance)
    print(f"\nReal mode materialized in {time.monotonic() - started:.0f} s\n")
    sys.stdout.write(render(PipelineSettings.from_env()) + "\n")


if __name__ == "__main__":
    main()
