"""``make real`` end to end on a temporary Dagster instance: every job and partition, the files it promises, and
one MLflow run per backtest year."""

import dagster as dg
import mlflow
import pandas as pd
import pytest

from election_assets.real.backtest import BACKTEST_YEARS
from election_assets.real.features import FEATURE_YEARS, NEXT_ELECTION
from election_assets.real_mode import render, run_all


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from conftest import make_sandbox

    sandbox = make_sandbox(tmp_path_factory.mktemp("real"))
    with dg.instance_for_test() as instance, sandbox.environment():
        run_all(instance, sandbox.definitions())
        yield sandbox, instance


def test_every_partition_of_the_real_graph_is_materialized(real_run):
    _, instance = real_run
    assert instance.get_materialized_partitions(dg.AssetKey("election_features")) == {str(y) for y in FEATURE_YEARS}
    assert instance.get_materialized_partitions(dg.AssetKey("walk_forward_backtest")) == {
        str(y) for y in BACKTEST_YEARS
    }
    for asset in ("county_returns", "backtest_summary", "next_election_forecast"):
        assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None


def test_the_forecast_files_have_the_promised_columns(real_run):
    sandbox, _ = real_run
    forecast = sandbox.settings().reports_dir / "real" / "forecast"
    counties = pd.read_csv(forecast / f"forecast_county_{NEXT_ELECTION}.csv", dtype={"county_fips": str})
    assert {"county_fips", "year", "p_candidate_a", "dem_two_party_share"} <= set(counties.columns)
    assert counties["county_fips"].str.fullmatch(r"\d{5}").all() and counties["county_fips"].is_unique
    assert (counties["year"] == NEXT_ELECTION).all()
    assert counties["p_candidate_a"].between(0, 1).all() and counties["dem_two_party_share"].between(0, 1).all()
    states = pd.read_csv(forecast / f"forecast_state_{NEXT_ELECTION}.csv")
    assert {"state_po", "year", "p_candidate_a"} <= set(states.columns)
    assert len(states) == 51 and states["p_candidate_a"].between(0, 1).all()


def test_the_summary_names_the_table_the_forecast_and_the_electoral_votes(real_run):
    sandbox, _ = real_run
    text = render(sandbox.settings())
    assert "| 2020 | **swing_forecaster** |" in text
    assert f"forecast_county_{NEXT_ELECTION}.csv" in text and "electoral votes median" in text


def test_each_backtest_year_and_the_forecast_are_mlflow_runs(real_run):
    sandbox, _ = real_run
    settings = sandbox.settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    runs = mlflow.search_runs(experiment_names=[f"{settings.mlflow_experiment}-real"])
    names = set(runs["tags.mlflow.runName"])
    assert names == {f"backtest-{year}" for year in BACKTEST_YEARS} | {f"forecast-{NEXT_ELECTION}"}
    backtest_2020 = runs[runs["tags.mlflow.runName"] == "backtest-2020"].iloc[0]
    assert 0 < backtest_2020["metrics.swing_forecaster.brier"] < backtest_2020["metrics.persistence.brier"]
