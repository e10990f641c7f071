"""Real mode: features per election year, the walk-forward backtest per test year, and the next-election forecast.

``election_features`` and ``walk_forward_backtest`` are partitioned by election year, so one year can be
rematerialized or backfilled from the UI; the summary and the forecast read every partition.
"""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd

from election_assets.core.compiled_model import SwingModel, save_compiled_model
from election_assets.core.data_modes import REAL_MODE
from election_assets.core.manifest import REAL, ModelManifest, SourceRun, library_versions
from election_assets.core.model_store import MODEL_FILE, REFERENCE_ROWS, reference_predictions
from election_assets.core.real_features import (
    REAL_FEATURE_NAMES,
    REAL_INPUT_FIELD_NAMES,
    REAL_MODEL_COLUMNS,
)
from election_assets.core.schema import CANDIDATE_A, CANDIDATE_B
from election_assets.defs.lineage import fingerprint, table_output
from election_assets.defs.resources import MlflowRegistry, ProjectStorage
from election_assets.modelling.export import compile_forecaster
from election_assets.real.backtest import (
    BACKTEST_YEARS,
    FORECASTER,
    backtest_markdown,
    backtest_year,
    beats_baselines,
    format_gain,
    pooled_vote_weighted_gain,
    published_comparison_markdown,
    state_calibration,
    state_calibration_markdown,
    training_rows,
    variant_choice_markdown,
)
from election_assets.real.campaign import (
    CAMPAIGN_END,
    CAMPAIGN_START,
    CampaignModel,
    DayForecast,
    campaign_days,
    forecast_as_of,
    timeline,
    timeline_png,
)
from election_assets.real.evaluation import (
    calibration_png,
)
from election_assets.real.features import (
    FEATURE_YEARS,
    NEXT_ELECTION,
    build_election_features,
    forecast_day,
    state_shares,
)
from election_assets.real.forecaster import VARIANT_PARAMS, SwingForecaster, fit_forecaster
from election_assets.real.maps import county_map_png, state_map_png

GROUP = "real"
# Dagster marks a materialization stale when its asset's code version changes: bump it with any change to what these
# assets compute (2: the poll weighting chosen by walk forward).
CODE_VERSION = "2"
ELECTION_YEAR_PARTITIONS = dg.StaticPartitionsDefinition([str(year) for year in FEATURE_YEARS])
BACKTEST_YEAR_PARTITIONS = dg.StaticPartitionsDefinition([str(year) for year in BACKTEST_YEARS])
ALL_ELECTIONS = dg.AssetIn("election_features", partition_mapping=dg.AllPartitionMapping())


def _by_year(partitions: dict[str, pd.DataFrame]) -> dict[int, pd.DataFrame]:
    return {int(year): frame for year, frame in partitions.items()}


def _png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


@contextmanager
def _mlflow_run(registry: MlflowRegistry, run_name: str) -> Iterator[mlflow.ActiveRun]:
    """A run in the real-mode experiment (``<experiment>-real``), next to the synthetic candidates' experiment."""
    with mlflow.start_run(experiment_id=registry.ensure_experiment("-real"), run_name=run_name) as run:
        yield run


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    partitions_def=ELECTION_YEAR_PARTITIONS,
    kinds={"pandas"},
)
def election_features(
    context: dg.AssetExecutionContext,
    county_returns: pd.DataFrame,
    state_returns: pd.DataFrame,
    polls: pd.DataFrame,
    county_demographics: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """One row per county for one election: features known the day before it (the polls that ended by then), and
    the outcome when the year is in the data (the last partition is the next election, which has none yet)."""
    year = int(context.partition_key)
    built = build_election_features(year, county_returns, state_returns, polls, county_demographics)
    frame, estimate = built.frame, built.polls
    polled = int((estimate.state_weight > 0).sum())
    context.log.info(
        f"{year}: {len(frame)} counties; {estimate.polls_used} polls, {polled} states polled, national swing "
        f"{estimate.national_swing:+.3f}; poll weighting {built.weighting.reason}; counts {built.counts}"
    )
    return table_output(
        frame,
        {
            "election_year": year,
            "as_of": forecast_day(year).isoformat(),
            "labelled": "outcome_dem_share" in frame.columns,
            "polls_used": estimate.polls_used,
            "states_with_own_polls": polled,
            "national_swing_in_polls": estimate.national_swing,
            "poll_weighting": built.weighting.reason,
            "polls_fingerprint": fingerprint(polls[polls["year"] == year]),
            "unjoined_or_missing": built.counts,
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=BACKTEST_YEAR_PARTITIONS,
    ins={"features_by_year": ALL_ELECTIONS},
    outs={
        "walk_forward_backtest": dg.AssetOut(
            code_version=CODE_VERSION,
            kinds={"xgboost", "mlflow"},
            description="Train on the elections before the partition's year, forecast that year as of the day "
            "before it, score the forecaster beside persistence and a previous-margin logistic regression. Logged "
            "to MLflow as one run per year.",
        ),
        "backtest_state_forecasts": dg.AssetOut(
            code_version=CODE_VERSION,
            kinds={"pandas"},
            description="The same backtest aggregated to states: each state's simulated win probability and "
            "expected share beside its result (the state-level calibration pools them).",
        ),
    },
)
def walk_forward_backtest(
    context: dg.AssetExecutionContext,
    features_by_year: dict[str, pd.DataFrame],
    state_returns: pd.DataFrame,
    polls: pd.DataFrame,
    storage: ProjectStorage,
    mlflow_registry: MlflowRegistry,
):
    year = int(context.partition_key)
    result = backtest_year(_by_year(features_by_year), year, polls, state_returns)
    variant, weighting = result.forecaster.variant, result.forecaster.poll_weighting
    context.log.info(
        f"backtest {year}: trained on {list(result.training_years)}; relative swing {variant.reason}; "
        f"poll weighting {weighting.reason}"
    )
    png = calibration_png(result.calibration, f"Calibration, {year} counties")
    directory = storage.reports_path("real", "backtest", str(year))
    (directory / "calibration.png").write_bytes(png)
    result.counties.to_csv(directory / "county_predictions.csv", index=False)
    verdict = beats_baselines(result.scores)
    noise = result.forecaster.noise(result.counties)
    with _mlflow_run(mlflow_registry, f"backtest-{year}") as run:
        mlflow.set_tags(
            {
                "mode": "real",
                "test_year": str(year),
                "noise_source": noise.source,
                "as_of": forecast_day(year).isoformat(),
                # The polls the backtest could see: those of its training years and of its test year.
                "polls_fingerprint": fingerprint(polls[polls["year"] <= year]),
            }
        )
        mlflow.log_params({"trained_on": ",".join(map(str, result.training_years)), "relative_swing": variant.chosen})
        mlflow.log_params(weighting.chosen.params())
        mlflow.log_params({"features": ",".join(REAL_FEATURE_NAMES), "noise_total": round(noise.total, 5)})
        for model, row in result.scores.iterrows():
            mlflow.log_metrics({f"{model}.{metric}": float(value) for metric, value in row.dropna().items()})
        mlflow.log_artifact(str(directory / "calibration.png"))
    scores = result.scores.rename_axis("model").reset_index().assign(year=year)
    states = result.states(state_shares(state_returns, year))
    yield table_output(states, {"election_year": year}, output_name="backtest_state_forecasts")
    yield dg.Output(
        scores,
        output_name="walk_forward_backtest",
        metadata={
            "scores": dg.MetadataValue.md(backtest_markdown({year: result.scores})),
            "calibration": _png_markdown(png, f"calibration {year}"),
            "calibration_png": dg.MetadataValue.path(str(directory / "calibration.png")),
            "beats_baselines": verdict,
            "noise": asdict(noise),
            "relative_swing": variant.reason,
            "relative_swing_walk_forward": dg.MetadataValue.md(variant_choice_markdown({year: variant})),
            "poll_weighting": weighting.reason,
            "mlflow_run_id": run.info.run_id,
            **{f"{FORECASTER}_{k}": float(v) for k, v in result.scores.loc[FORECASTER].dropna().items()},
        },
    )


@dg.asset(group_name=GROUP, code_version=CODE_VERSION, kinds={"pandas"})
def backtest_summary(
    context: dg.AssetExecutionContext,
    walk_forward_backtest: dict[str, pd.DataFrame],
    backtest_state_forecasts: dict[str, pd.DataFrame],
    storage: ProjectStorage,
) -> dg.MaterializeResult:
    """Every backtest year in one table (the one docs/generated/real_backtest.md shows), whether the forecaster
    beat both baselines each year, its vote-weighted accuracy gain over persistence on all the votes of the
    backtest years together, its state calls beside the published forecasts, and the calibration of its state
    probabilities pooled over the years (table and plot with the states in each bin)."""
    scores_by_year = {
        int(year): frame.drop(columns="year").set_index("model") for year, frame in walk_forward_backtest.items()
    }
    table = backtest_markdown(scores_by_year)
    verdicts = {str(year): beats_baselines(scores) for year, scores in sorted(scores_by_year.items())}
    years = tuple(sorted(scores_by_year))
    pooled = pooled_vote_weighted_gain(scores_by_year, years)
    directory = storage.reports_path("real")
    (directory / "backtest.md").write_text(table + "\n")
    summary = {"beats_baselines": verdicts, "pooled_vote_weighted_gain": {"years": years, **pooled}}
    (directory / "backtest.json").write_text(json.dumps(summary, indent=2) + "\n")
    calibration = state_calibration(pd.concat(backtest_state_forecasts.values(), ignore_index=True))
    label = f"{years[0]}-{years[-1]}"
    png = calibration_png({FORECASTER: calibration}, f"State calibration, {label} pooled", unit="state")
    (directory / "state_calibration.png").write_bytes(png)
    context.log.info("\n" + table)
    context.log.info(
        f"vote-weighted accuracy gain over persistence, {years[0]}-{years[-1]} pooled: {format_gain(pooled)}"
    )
    return dg.MaterializeResult(
        metadata={
            "table": dg.MetadataValue.md(table),
            "beside_published_forecasts": dg.MetadataValue.md(published_comparison_markdown(scores_by_year)),
            "beats_baselines": verdicts,
            "pooled_vote_weighted_gain": summary["pooled_vote_weighted_gain"],
            "state_calibration": dg.MetadataValue.md(state_calibration_markdown(calibration)),
            "state_calibration_plot": _png_markdown(png, f"state calibration {label}"),
            "state_calibration_png": dg.MetadataValue.path(str(directory / "state_calibration.png")),
            "path": dg.MetadataValue.path(str(directory / "backtest.md")),
        }
    )


def _real_manifest(
    forecaster: SwingForecaster,
    compiled: SwingModel,
    train: pd.DataFrame,
    latest_backtest: pd.DataFrame,
    run_id: str,
) -> ModelManifest:
    backtest_year = int(latest_backtest["year"].iloc[0])
    scores = latest_backtest.set_index("model").loc[FORECASTER].dropna()
    return ModelManifest(
        data_mode=REAL,
        model_name=FORECASTER,
        model_kind=SwingModel.kind,
        trained_at=datetime.now(UTC).isoformat(),
        # The method's out-of-sample record: the walk-forward backtest of the latest year in the data.
        metrics={key: float(value) for key, value in scores.items() if key != "year"},
        feature_names=list(REAL_MODEL_COLUMNS),
        input_schema=REAL_MODE.input_schema(),
        labels={"positive": CANDIDATE_A, "negative": CANDIDATE_B, CANDIDATE_A: "Democratic", CANDIDATE_B: "Republican"},
        hyperparameters={
            "relative_swing": forecaster.variant.chosen,
            **VARIANT_PARAMS[forecaster.variant.chosen],
            **forecaster.poll_weighting.chosen.params(),
        },
        training_data_fingerprint=fingerprint(train),
        training_rows=len(train),
        source_run=SourceRun(dagster_run_id=run_id),
        library_versions=library_versions("numpy", "pandas", "xgboost-cpu", "dagster"),
        # Counties it learned from, drawn once with a fixed seed: the real model has no held-out rows of its own.
        reference=reference_predictions(
            compiled,
            REAL_MODE,
            train[list(REAL_INPUT_FIELD_NAMES)].sample(REFERENCE_ROWS, random_state=0).to_numpy(np.float64),
        ),
        trained_through=forecaster.trained_through,
        training_years=sorted(int(year) for year in train["year"].unique()),
        forecast_year=NEXT_ELECTION,
        metrics_source=f"walk-forward backtest {backtest_year} (trained on the elections before it)",
        noise=forecaster.published_noise,
    )


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    ins={"features_by_year": ALL_ELECTIONS, "backtests": dg.AssetIn("walk_forward_backtest")},
    kinds={"xgboost", "numpy"},
)
def real_champion_model(
    context: dg.AssetExecutionContext,
    features_by_year: dict[str, pd.DataFrame],
    backtests: dict[str, pd.DataFrame],
    state_returns: pd.DataFrame,
    polls: pd.DataFrame,
    storage: ProjectStorage,
) -> dg.MaterializeResult:
    """The forecaster trained on every election in the data, compiled to the API's NumPy format and published
    to the real-mode model store (``ELECTION_REAL_MODEL_STORE``), with the backtest of the latest year as its
    record. The API serves it with ``ELECTION_API_MODE=real``."""
    train = training_rows(_by_year(features_by_year), before=NEXT_ELECTION)
    forecaster = fit_forecaster(train, polls, state_returns)
    compiled = compile_forecaster(forecaster)
    manifest = _real_manifest(forecaster, compiled, train, backtests[max(backtests, key=int)], context.run.run_id)
    version = storage.real_model_store().publish(
        manifest, lambda directory: save_compiled_model(compiled, directory / MODEL_FILE)
    )
    context.log.info(f"real-mode model {version} trained through {forecaster.trained_through} published")
    return dg.MaterializeResult(
        metadata={
            "version": version,
            "model_store": dg.MetadataValue.path(str(storage.real_model_store().version_dir(version))),
            "trained_through": forecaster.trained_through,
            "training_rows": len(train),
            "relative_swing": forecaster.variant.reason,
            "poll_weighting": forecaster.poll_weighting.reason,
            "metrics": manifest.metrics,
            "metrics_source": manifest.metrics_source,
        }
    )


CAMPAIGN_DAY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=CAMPAIGN_START.isoformat(), end_date=(CAMPAIGN_END + timedelta(days=1)).isoformat()
)
NEXT_ELECTION_FEATURES = dg.AssetIn(
    "election_features", partition_mapping=dg.SpecificPartitionsPartitionMapping([str(NEXT_ELECTION)])
)


def _file_label(day: date) -> str:
    """The forecast of the day before the election keeps the plain names; any other day's names say its date."""
    return str(NEXT_ELECTION) if day == CAMPAIGN_END else day.isoformat()


def _maps(forecast: DayForecast, directory: Path, label: str) -> dict[str, dg.MetadataValue]:
    """State and county maps (Alaska one unit) of the expected share and of the win probability."""
    maps: dict[str, dg.MetadataValue] = {}
    for level, table, draw in (
        ("state", forecast.states, state_map_png),
        ("county", forecast.counties.set_index("county_fips"), county_map_png),
    ):
        for kind, column, title in (
            ("share", "dem_two_party_share", f"expected Democratic two-party share by {level}"),
            ("probability", "p_candidate_a", f"probability the Democrat carries each {level}"),
        ):
            png = draw(table[column], f"{NEXT_ELECTION} forecast as of {forecast.day}: {title}", kind)
            map_path = directory / f"map_{level}_{kind}_{label}.png"
            map_path.write_bytes(png)
            maps[f"map_{level}_{kind}"] = _png_markdown(png, f"{label} {level} {kind} map")
            maps[f"map_{level}_{kind}_png"] = dg.MetadataValue.path(str(map_path))
    return maps


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    partitions_def=CAMPAIGN_DAY_PARTITIONS,
    ins={"counties": NEXT_ELECTION_FEATURES},
    deps=[real_champion_model],
    kinds={"numpy"},
)
def next_election_forecast(
    context: dg.AssetExecutionContext,
    counties: pd.DataFrame,
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
    storage: ProjectStorage,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """The next election as forecast on one day of the campaign (a partition; the last is the day before the
    election) from the polls that ended before that day, with the published real-mode model exactly as the API
    computes it: county and state win probabilities, the electoral-vote distribution from simulated correlated
    outcomes, and maps."""
    day = date.fromisoformat(context.partition_key)
    champion = storage.real_model_store().load()
    model = CampaignModel.published(champion, polls, state_returns)
    forecast = forecast_as_of(model, counties, polls, state_returns, day)
    directory = storage.reports_path("real", "forecast")
    label = _file_label(day)
    county_path = directory / f"forecast_county_{label}.csv"
    state_path = directory / f"forecast_state_{label}.csv"
    distribution_path = directory / f"electoral_votes_distribution_{label}.csv"
    forecast.counties.to_csv(county_path, index=False)
    forecast.states.reset_index().to_csv(state_path, index=False)
    forecast.distribution().to_csv(distribution_path, index=False)
    electoral = forecast.summary
    (directory / f"electoral_votes_{label}.json").write_text(json.dumps(electoral, indent=2) + "\n")
    states = forecast.states
    closest = states.assign(margin=(states["p_candidate_a"] - 0.5).abs()).nsmallest(10, "margin")
    context.log.info(f"{NEXT_ELECTION} as of {day}: P(Candidate A wins) {electoral['p_candidate_a_wins']:.3f}")
    with _mlflow_run(mlflow_registry, f"forecast-{NEXT_ELECTION}-as-of-{day}"):
        mlflow.set_tags(
            {
                "mode": "real",
                "forecast_year": str(NEXT_ELECTION),
                "as_of": day.isoformat(),
                "model_version": champion.version,
                "trained_through": str(champion.manifest.trained_through),
                "polls_fingerprint": fingerprint(polls[polls["year"] == NEXT_ELECTION]),
            }
        )
        mlflow.log_metrics({k: v for k, v in electoral.items() if isinstance(v, float)})
        mlflow.log_artifact(str(county_path))
        mlflow.log_artifact(str(state_path))
    return dg.MaterializeResult(
        metadata={
            "election_year": NEXT_ELECTION,
            "as_of": day.isoformat(),
            "model_version": champion.version,
            "trained_through": champion.manifest.trained_through,
            "poll_weighting": model.weighting.label,
            "electoral_votes": electoral,
            "closest_states": dg.MetadataValue.md(closest.drop(columns="margin").round(3).to_markdown()),
            "county_forecast": dg.MetadataValue.path(str(county_path)),
            "state_forecast": dg.MetadataValue.path(str(state_path)),
            "electoral_votes_distribution": dg.MetadataValue.path(str(distribution_path)),
            **_maps(forecast, directory, label),
        }
    )


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    ins={"counties": NEXT_ELECTION_FEATURES},
    deps=[real_champion_model],
    kinds={"numpy"},
)
def campaign_timeline(
    context: dg.AssetExecutionContext,
    counties: pd.DataFrame,
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
    storage: ProjectStorage,
) -> dg.MaterializeResult:
    """The next election's forecast on every day of the campaign: the Democratic candidate's win probability and
    electoral-vote median with its 80 % interval, day by day (PNG and CSV in data/reports/real/)."""
    champion = storage.real_model_store().load()
    model = CampaignModel.published(champion, polls, state_returns)
    days = campaign_days()
    frame = timeline(forecast_as_of(model, counties, polls, state_returns, day) for day in days)
    directory = storage.reports_path("real")
    png = timeline_png(frame, f"The {NEXT_ELECTION} forecast, day by day (model {champion.version})")
    (directory / f"timeline_{NEXT_ELECTION}.png").write_bytes(png)
    frame.to_csv(directory / f"timeline_{NEXT_ELECTION}.csv", index=False)
    last = frame.iloc[-1]
    context.log.info(f"{len(days)} days, {days[0]} to {days[-1]}; last P(A wins) {last['p_candidate_a_wins']:.3f}")
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "timeline": _png_markdown(png, f"{NEXT_ELECTION} timeline"),
            "timeline_png": dg.MetadataValue.path(str(directory / f"timeline_{NEXT_ELECTION}.png")),
            "timeline_csv": dg.MetadataValue.path(str(directory / f"timeline_{NEXT_ELECTION}.csv")),
            "last_day_p_candidate_a_wins": float(last["p_candidate_a_wins"]),
        }
    )
