"""``make real`` end to end on a temporary Dagster instance: every job and partition, the files it promises, and
one MLflow run per backtest year."""

import base64
import json
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import pytest

from election_assets.core.manifest import REAL
from election_assets.core.model_store import ModelStore
from election_assets.core.real_features import (
    REAL_INPUT_FIELD_NAMES,
    REAL_MODEL_COLUMNS,
    real_model_features,
)
from election_assets.launch import launch
from election_assets.real.backtest import BACKTEST_YEARS
from election_assets.real.campaign import CAMPAIGN_END, campaign_days
from election_assets.real.features import FEATURE_YEARS, NEXT_ELECTION
from election_assets.real_mode import render

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_partition_of_the_real_graph_is_materialized(real_pipeline):
    _, instance = real_pipeline
    assert instance.get_materialized_partitions(dg.AssetKey("election_features")) == {str(y) for y in FEATURE_YEARS}
    assert instance.get_materialized_partitions(dg.AssetKey("walk_forward_backtest")) == {
        str(y) for y in BACKTEST_YEARS
    }
    for asset in ("county_returns", "polls", "backtest_summary", "campaign_timeline"):
        assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None
    # make real forecasts the day before the election; the other days of the campaign are partitions to pick.
    assert instance.get_materialized_partitions(dg.AssetKey("next_election_forecast")) == {CAMPAIGN_END.isoformat()}


def test_the_forecast_files_have_the_promised_columns(real_pipeline):
    sandbox, _ = real_pipeline
    forecast = sandbox.settings().reports_dir / "real" / "forecast"
    counties = pd.read_csv(forecast / f"forecast_county_{NEXT_ELECTION}.csv", dtype={"county_fips": str})
    assert {"county_fips", "year", "p_candidate_a", "dem_two_party_share"} <= set(counties.columns)
    assert counties["county_fips"].str.fullmatch(r"\d{5}").all() and counties["county_fips"].is_unique
    assert (counties["year"] == NEXT_ELECTION).all()
    assert counties["p_candidate_a"].between(0, 1).all() and counties["dem_two_party_share"].between(0, 1).all()
    states = pd.read_csv(forecast / f"forecast_state_{NEXT_ELECTION}.csv")
    assert {"state_po", "year", "p_candidate_a"} <= set(states.columns)
    assert len(states) == 51 and states["p_candidate_a"].between(0, 1).all()
    distribution = pd.read_csv(forecast / f"electoral_votes_distribution_{NEXT_ELECTION}.csv")
    assert (distribution["candidate_a_votes"] + distribution["candidate_b_votes"] == 538).all()
    assert distribution["candidate_a_votes"].is_unique and distribution["probability"].sum() == pytest.approx(1.0)
    summary = json.loads((forecast / f"electoral_votes_{NEXT_ELECTION}.json").read_text())
    wins = distribution.loc[distribution["candidate_a_votes"] >= 270, "probability"].sum()
    assert wins == pytest.approx(summary["p_candidate_a_wins"])


def test_the_summary_names_the_table_the_forecast_and_the_electoral_votes(real_pipeline):
    sandbox, _ = real_pipeline
    text = render(sandbox.settings())
    assert "| 2020 | **swing_forecaster** |" in text
    assert "vote-weighted accuracy vs persistence, 2008-2020 pooled: " in text
    assert f"as of {CAMPAIGN_END.isoformat()}: the Democratic candidate wins with probability" in text
    assert f"timeline_{NEXT_ELECTION}.png" in text and "map_{state,county}_{share,probability}" in text
    assert f"forecast_county_{NEXT_ELECTION}.csv" in text and "electoral votes median" in text
    assert "  relative swing: ridge; poll weighting: half-life " in text  # what the published model's manifest says


def test_each_backtest_year_and_the_forecast_are_mlflow_runs(real_pipeline):
    sandbox, _ = real_pipeline
    settings = sandbox.settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(f"{settings.mlflow_experiment}-real")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning" in render(settings)
    runs = mlflow.search_runs(experiment_names=[experiment.name])
    names = set(runs["tags.mlflow.runName"])
    assert names == {f"backtest-{year}" for year in BACKTEST_YEARS} | {f"forecast-{NEXT_ELECTION}-as-of-{CAMPAIGN_END}"}
    backtest_2020 = runs[runs["tags.mlflow.runName"] == "backtest-2020"].iloc[0]
    assert 0 < backtest_2020["metrics.swing_forecaster.brier"] < backtest_2020["metrics.persistence.brier"]
    # Each backtest records the elections it learned from, all before its test year.
    trained_on = dict(zip(runs["tags.mlflow.runName"], runs["params.trained_on"], strict=True))
    assert trained_on["backtest-2016"] == "2004,2008,2012"
    assert trained_on["backtest-2008"] == "2004"


def test_the_served_model_is_published_and_reproduces_the_forecast_file(real_pipeline, next_election_counties):
    sandbox, _ = real_pipeline
    settings = sandbox.settings()
    stored = ModelStore(settings.real_model_store_dir).load()
    manifest = stored.manifest
    assert manifest.data_mode == REAL and manifest.trained_through == 2020
    assert manifest.feature_names == list(REAL_MODEL_COLUMNS)
    assert manifest.metrics_source.startswith("walk-forward backtest 2020")
    required = {field["name"] for field in manifest.input_schema if field["required"]}
    assert "poll_dem_share" not in required and "prev_dem_share" in required
    forecast = pd.read_csv(
        settings.reports_dir / "real" / "forecast" / f"forecast_county_{NEXT_ELECTION}.csv", dtype={"county_fips": str}
    )
    probability = stored.model.predict_proba_a(
        real_model_features(next_election_counties[list(REAL_INPUT_FIELD_NAMES)].to_numpy())
    )
    expected = pd.Series(probability, index=next_election_counties["county_fips"])
    assert forecast.set_index("county_fips")["p_candidate_a"].to_numpy() == pytest.approx(
        expected.reindex(forecast["county_fips"]).to_numpy(), abs=1e-12
    )


def _partition_metadata(instance: dg.DagsterInstance, asset: str, partition: int) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(partition)]), limit=1
    ).records
    assert records, (asset, partition)
    return records[0].asset_materialization.metadata


def test_backtest_metadata_carries_the_calibration_plot_and_features_their_unjoined_counts(real_pipeline):
    _, instance = real_pipeline
    for year in BACKTEST_YEARS:
        metadata = _partition_metadata(instance, "walk_forward_backtest", year)
        inline = metadata["calibration"].value
        assert inline.startswith(f"![calibration {year}](data:image/png;base64,")
        assert base64.b64decode(inline.split(",", 1)[1].rstrip(")")).startswith(PNG_SIGNATURE)
        assert Path(metadata["calibration_png"].value).read_bytes().startswith(PNG_SIGNATURE)
    counts = _partition_metadata(instance, "election_features", 2004)["unjoined_or_missing"].value
    assert counts["new_units_without_previous_result"] == 1  # Broomfield, CO, created in 2001


def test_the_timeline_has_every_campaign_day_and_its_picture(real_pipeline):
    sandbox, _ = real_pipeline
    real = sandbox.settings().reports_dir / "real"
    days = pd.read_csv(real / f"timeline_{NEXT_ELECTION}.csv")
    assert list(days["day"]) == [day.isoformat() for day in campaign_days()]
    assert days["p_candidate_a_wins"].between(0, 1).all()
    assert (days["candidate_a_votes_low80"] <= days["candidate_a_votes_median"]).all()
    assert (days["candidate_a_votes_median"] <= days["candidate_a_votes_high80"]).all()
    # The last day of the timeline is the forecast of the day before the election, computed the same way.
    final = json.loads((real / "forecast" / f"electoral_votes_{NEXT_ELECTION}.json").read_text())
    assert days["p_candidate_a_wins"].iloc[-1] == pytest.approx(final["p_candidate_a_wins"])
    assert (real / f"timeline_{NEXT_ELECTION}.png").read_bytes().startswith(b"\x89PNG")
    for level in ("state", "county"):
        for kind in ("share", "probability"):
            assert (real / "forecast" / f"map_{level}_{kind}_{NEXT_ELECTION}.png").is_file()


def test_a_forecast_of_another_campaign_day_is_written_under_its_date(real_pipeline):
    sandbox, instance = real_pipeline
    with sandbox.environment():
        result = launch("real_daily_forecast", instance, partition_key="2024-09-15")
    assert result.success
    forecast = sandbox.settings().reports_dir / "real" / "forecast"
    summary = json.loads((forecast / "electoral_votes_2024-09-15.json").read_text())
    assert summary["as_of"] == "2024-09-15"
    assert (forecast / "forecast_county_2024-09-15.csv").is_file() and (
        forecast / "map_state_share_2024-09-15.png"
    ).is_file()
    final = json.loads((forecast / f"electoral_votes_{NEXT_ELECTION}.json").read_text())
    assert final["as_of"] == CAMPAIGN_END.isoformat() and final["polls_used"] > summary["polls_used"]
