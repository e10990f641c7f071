"""Election night (issue 16): the prior the live updater starts from, and the score of a replayed night.

``election_night_prior`` is partitioned by election year: for a replayed year (``live.replay.REPLAY_YEARS``) it is
the walk-forward model trained on the elections before that year only, exactly the backtest's training rows; for the
next election it is the real model (``real_champion_model``'s training rows, every election in the data). Either
way its county forecasts are made from that year's ``election_features`` (polls as of the day before the election)
without their outcome columns, and the file is the one the updater loads (``StorePaths.live_prior``).

``replay_score`` reads the summary ``make live-demo`` writes after replaying a year through the updater and scores
its calls against the state results (``live.scoring``), with one MLflow run per replayed year.
"""

import dagster as dg
import mlflow
import pandas as pd

from election_assets.defs.real.assets import _by_year, _mlflow_run
from election_assets.defs.resources import MlflowRegistry, ProjectStorage
from election_assets.live.prior import build_prior
from election_assets.live.replay import REPLAY_YEARS
from election_assets.live.scoring import ReplaySummaryError, read_replay_summary, score_replay
from election_assets.real.backtest import FORECASTER, training_rows
from election_assets.real.evaluation import electoral_votes
from election_assets.real.features import FEATURE_YEARS, NEXT_ELECTION, forecast_day, state_shares

GROUP = "live"
# Bump with any change to what these assets compute (2: priors with the poll weighting chosen by walk forward).
CODE_VERSION = "2"
PRIOR_YEARS: tuple[int, ...] = (*REPLAY_YEARS, NEXT_ELECTION)
PRIOR_YEAR_PARTITIONS = dg.StaticPartitionsDefinition([str(year) for year in PRIOR_YEARS])
REPLAY_YEAR_PARTITIONS = dg.StaticPartitionsDefinition([str(year) for year in REPLAY_YEARS])
# The prior of a year reads the features of that year and of every election before it, none after.
FEATURES_THROUGH_THE_YEAR = dg.AssetIn(
    "election_features",
    partition_mapping=dg.StaticPartitionMapping(
        {
            str(upstream): [str(year) for year in PRIOR_YEARS if upstream <= year]
            for upstream in FEATURE_YEARS
            if upstream <= max(PRIOR_YEARS)
        }
    ),
)
OUTCOME_PREFIX = "outcome_"


def prior_rows(features_by_year: dict[int, pd.DataFrame], year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prior's training rows (every labelled election before ``year``) and its target: ``year``'s counties
    without their outcome columns, so nothing of the year's results can reach the prior."""
    frame = features_by_year[year]
    target = frame.drop(columns=[column for column in frame.columns if column.startswith(OUTCOME_PREFIX)])
    return training_rows(features_by_year, before=year), target


def prior_source(year: int, training_years: list[int]) -> str:
    trained_on = ",".join(map(str, training_years))
    model = "the real model" if year == NEXT_ELECTION else "the walk-forward model"
    return f"{model} ({FORECASTER}) trained on {trained_on}, forecast as of {forecast_day(year).isoformat()}"


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    partitions_def=PRIOR_YEAR_PARTITIONS,
    ins={"features_by_year": FEATURES_THROUGH_THE_YEAR},
    kinds={"xgboost", "json"},
)
def election_night_prior(
    context: dg.AssetExecutionContext,
    features_by_year: dict[str, pd.DataFrame],
    state_returns: pd.DataFrame,
    polls: pd.DataFrame,
    storage: ProjectStorage,
) -> dg.MaterializeResult:
    """What the live updater believes before the first county reports (``live.prior``): each county's forecast
    share, expected votes and error spread, the national and state error parts, the electoral votes. For a replayed
    year the model learnt from the elections before it only; for the next election it is the real model. Written
    to ``<ELECTION_DATA_DIR>/live/prior_<year>.json`` with a manifest and the SHA-256 the updater checks."""
    year = int(context.partition_key)
    train, target = prior_rows(_by_year(features_by_year), year)
    training_years = sorted(int(y) for y in train["year"].unique())
    prior = build_prior(train, target, electoral_votes(year), prior_source(year, training_years), polls, state_returns)
    if prior.manifest.trained_through >= year:  # training_rows guarantees it; the file must never say otherwise
        raise dg.Failure(f"the {year} prior was trained through {prior.manifest.trained_through}")
    path = storage.store_paths().live_prior(year)
    digest = prior.write(path)
    context.log.info(
        f"{year} prior: {len(prior.county_fips)} counties, trained on {training_years}, noise "
        f"{prior.noise.national:.4f}/{prior.noise.state:.4f}/{prior.noise.county:.4f}; {path} ({digest[:12]})"
    )
    return dg.MaterializeResult(
        metadata={
            "year": year,
            "source": prior.manifest.source,
            "trained_through": prior.manifest.trained_through,
            "training_years": training_years,
            "as_of": forecast_day(year).isoformat(),
            "noise_national": prior.noise.national,
            "noise_state": prior.noise.state,
            "noise_county": prior.noise.county,
            "noise_source": prior.noise.source,
            "counties": len(prior.county_fips),
            "states": len(set(prior.state_po)),
            "electoral_votes": sum(prior.electoral_votes.values()),
            "realignment_covariates": list(prior.covariate_names),
            "sha256": digest,
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(digest),
    )


@dg.asset(
    group_name=GROUP,
    code_version=CODE_VERSION,
    partitions_def=REPLAY_YEAR_PARTITIONS,
    # The replay ran the updater from the year's prior (outside Dagster: make live-demo); lineage only.
    deps=[dg.AssetDep(election_night_prior, partition_mapping=dg.IdentityPartitionMapping())],
    kinds={"mlflow"},
)
def replay_score(
    context: dg.AssetExecutionContext,
    state_returns: pd.DataFrame,
    storage: ProjectStorage,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """A finished replay of the year's election night scored against the results: the states called, the wrong
    calls (recomputed from the state results, not taken from the replay), the share of each state's vote counted
    at its call, and the share counted nationwide when the presidency was called. One MLflow run per year."""
    year = int(context.partition_key)
    path = storage.store_paths().replay_summary(year)
    try:
        summary = read_replay_summary(path, year)
    except ReplaySummaryError as error:
        raise dg.Failure(str(error)) from error
    score = score_replay(summary, state_shares(state_returns, year), electoral_votes(year))
    for note in score.disagreements:
        context.log.warning(f"replay summary {year} disagrees with the results: {note}")
    wrong = ",".join(score.wrong_calls) or "none"
    context.log.info(
        f"replay {year}: {score.states_called} states called, wrong: {wrong}; presidency "
        f"{score.national_winner} (actual {score.actual_national_winner}) at {score.national_called_at_share}"
    )
    with _mlflow_run(mlflow_registry, f"replay-{year}") as run:
        mlflow.set_tags(
            {
                "mode": "live",
                "replay_year": str(year),
                "national_winner": str(score.national_winner),
                **{f"prior_{key}": str(value) for key, value in score.prior.items()},
            }
        )
        mlflow.log_params({"wrong_calls": wrong, "uncalled": ",".join(score.uncalled) or "none"})
        mlflow.log_metrics(score.metrics())
        mlflow.log_artifact(str(path))
    return dg.MaterializeResult(
        metadata={
            "year": year,
            "states_called": score.states_called,
            "wrong_calls": list(score.wrong_calls),
            "wrong_call_count": len(score.wrong_calls),
            "uncalled": list(score.uncalled),
            "median_called_share": score.median_called_share,
            "national_winner": str(score.national_winner),
            "actual_national_winner": score.actual_national_winner,
            "national_called_at_share": score.national_called_at_share,
            "summary_disagreements": list(score.disagreements),
            **score.run,
            **{f"prior_{key}": value for key, value in score.prior.items()},
            "calls": dg.MetadataValue.md(score.markdown()),
            "summary": dg.MetadataValue.path(str(path)),
            "mlflow_run_id": run.info.run_id,
        }
    )
