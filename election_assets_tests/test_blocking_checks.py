"""Corrupt raw data stops the graph at the blocking Pandera check, with a message naming column, rule and rows."""

import dagster as dg
import pytest

from election_assets.core.synthetic import generate_regions
from election_assets_tests.helpers import TRAINING_ASSETS, run_assets

DOWNSTREAM_OF_RAW = (set(TRAINING_ASSETS) - {"raw_regions"}) | {"batch_predictions", "drift_report"}


@pytest.fixture
def corrupt_csv(tmp_path):
    frame = generate_regions(400, seed=1, dirty_fraction=0.0).astype({"population": object})
    frame.loc[3, "population"] = "many"  # wrong type
    frame.loc[7, "education_rate"] = 1.7  # out of range
    frame.loc[9, "region_id"] = frame.loc[8, "region_id"]  # duplicate id
    path = tmp_path / "corrupt.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_corrupt_raw_file_fails_the_blocking_check_and_nothing_downstream_materializes(sandbox, corrupt_csv):
    path, frame = corrupt_csv
    result = run_assets(
        sandbox,
        run_config={"ops": {"raw_regions": {"config": {"source_path": str(path)}}}},
        raise_on_error=False,
    )
    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_regions" in materialized
    assert materialized & DOWNSTREAM_OF_RAW == set()

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_regions_schema"]
    assert not evaluation.passed
    message = evaluation.description
    assert "column 'population' failed rule 'numeric'" in message and "'many'" in message
    assert "column 'education_rate' failed rule 'range(>= 0 and <= 1)'" in message and "1.7" in message
    assert "column 'region_id' failed rule 'field_uniqueness'" in message
    assert frame.loc[7, "region_id"] in message  # example rows are named by region id


def _raw_check(sandbox, frame, path):
    """The raw_regions schema check's evaluation of ``frame``, fed to the pipeline as the file ``path``."""
    frame.to_csv(path, index=False)
    result = run_assets(
        sandbox,
        run_config={"ops": {"raw_regions": {"config": {"source_path": str(path)}}}},
        selection=["raw_regions"],
        raise_on_error=False,
    )
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_regions_schema"]
    return evaluation


def test_a_missing_column_is_named_as_missing(sandbox, tmp_path):
    frame = generate_regions(200, seed=2).drop(columns="urban_ratio")
    evaluation = _raw_check(sandbox, frame, tmp_path / "no_urban_ratio.csv")
    assert not evaluation.passed
    assert "column 'urban_ratio' is missing" in evaluation.description
    assert "row ?" not in evaluation.description


def test_an_implausibly_large_number_fails_the_range_rule(sandbox, tmp_path):
    frame = generate_regions(200, seed=3)
    frame.loc[4, "population"] = 2**70
    evaluation = _raw_check(sandbox, frame, tmp_path / "huge.csv")
    assert "column 'population' failed rule 'range(> 0 and <= 5e+07)'" in evaluation.description


def test_missing_source_file_names_the_config_field(sandbox, tmp_path):
    result = run_assets(
        sandbox,
        run_config={"ops": {"raw_regions": {"config": {"source_path": str(tmp_path / "nope.csv")}}}},
        selection=["raw_regions"],
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "config field 'source_path'" in failure.step_failure_data.error.message


def test_cleaning_drop_rate_check_blocks_a_broken_feed(sandbox):
    result = run_assets(
        sandbox,
        run_config={"ops": {"raw_regions": {"config": {"n_regions": 1_000, "dirty_fraction": 0.3}}}},
        selection=["raw_regions", "cleaned_regions", "region_features"],
        raise_on_error=False,
    )
    evaluations = {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["cleaned_regions"]
    }
    assert not evaluations["drop_rate_within_limit"].passed
    assert "above the limit of 10%" in evaluations["drop_rate_within_limit"].description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "region_features" not in materialized


@pytest.mark.parametrize(
    ("asset", "needed_for"), [("batch_predictions", "to score the batch"), ("drift_report", "to measure drift against")]
)
def test_scoring_or_monitoring_without_a_champion_fails_saying_what_needed_it(sandbox, asset, needed_for):
    result = run_assets(
        sandbox,
        run_config={"ops": {"current_regions": {"config": {"n_regions": 200}}}},
        selection=["current_regions", "cleaned_current_regions", asset],
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == asset
    message = failure.step_failure_data.error.message
    assert f"no champion {needed_for} in {sandbox.settings().model_store_dir}" in message
