"""Re-running assets is idempotent: the same config on the same data gives the same data versions, the same
forecasts, and no new champion (a challenger equal to the champion does not beat it). And a corrupt feed arriving
after that stops at the blocking check without changing anything downstream of it."""

import pandas as pd
import pytest

from election_assets.core.model_store import ModelStore
from election_assets.core.synthetic import generate_regions
from election_assets.defs.scoring.assets import PREDICTIONS_CSV
from election_assets_tests.helpers import TRAINING_ASSETS, run_assets

SCORING_ASSETS = ("current_regions", "cleaned_current_regions", "batch_predictions")
DATA_ASSETS = ("raw_regions", "cleaned_regions", "region_features", "current_regions", "cleaned_current_regions")
_SEARCH = {"config": {"search_iterations": 1, "cv_folds": 2}}
CONFIG = {
    "ops": {
        "raw_regions": {"config": {"n_regions": 1_500, "seed": 31}},
        "current_regions": {"config": {"n_regions": 300, "seed": 32}},
        "candidate_logistic_regression": _SEARCH,
        "candidate_random_forest": _SEARCH,
        "candidate_xgboost": _SEARCH,
    }
}


def _materializations(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def runs(new_sandbox):
    """The same selection with the same config, materialized twice in one sandbox."""
    sandbox = new_sandbox("idempotency")
    store = ModelStore(sandbox.settings().model_store_dir)
    predictions = sandbox.settings().reports_dir / "predictions" / PREDICTIONS_CSV
    selection = [*TRAINING_ASSETS, *SCORING_ASSETS]
    corrupt = generate_regions(400, seed=33, dirty_fraction=0.0)
    corrupt.loc[5, "undecided_rate"] = -0.4  # out of range
    corrupt_path = sandbox.data_dir / "corrupt.csv"
    corrupt.to_csv(corrupt_path, index=False)
    corrupt_config = {"ops": {**CONFIG["ops"], "raw_regions": {"config": {"source_path": str(corrupt_path)}}}}

    snapshots = []
    for config in (CONFIG, CONFIG, corrupt_config):
        result = run_assets(sandbox, config, selection, raise_on_error=False)
        snapshots.append(
            {
                "result": result,
                "materializations": _materializations(result),
                "latest": store.latest_version(),
                "versions": store.list_versions(),
                "predictions": pd.read_csv(predictions),
                "corrupt_region": corrupt.loc[5, "region_id"],
            }
        )
    return snapshots


def test_data_assets_get_the_same_data_version(runs):
    assert runs[0]["result"].success and runs[1]["result"].success
    first, second = (run["materializations"] for run in runs[:2])
    for name in DATA_ASSETS:
        assert first[name].tags["dagster/data_version"] == second[name].tags["dagster/data_version"], name


def test_second_training_run_keeps_the_champion(runs):
    first, second = runs[:2]
    champion = second["materializations"]["champion_model"].metadata
    assert first["latest"] is not None
    assert champion["promoted"].value is False
    assert "does not beat" in champion["reason"].value
    assert second["latest"] == first["latest"] and second["versions"] == first["versions"]


def test_rescoring_gives_the_same_forecasts(runs):
    first, second = (run["predictions"] for run in runs[:2])
    pd.testing.assert_frame_equal(first, second)
    assert first["model_version"].unique().tolist() == [runs[0]["latest"]]


def test_a_corrupt_feed_after_a_good_run_changes_nothing_downstream(runs):
    good, corrupt = runs[1], runs[2]
    assert not corrupt["result"].success
    (evaluation,) = [e for e in corrupt["result"].get_asset_check_evaluations() if e.check_name == "raw_regions_schema"]
    assert not evaluation.passed
    assert "column 'undecided_rate' failed rule" in evaluation.description
    assert corrupt["corrupt_region"] in evaluation.description  # the bad row is named
    assert set(corrupt["materializations"]) & set(TRAINING_ASSETS) == {"raw_regions"}
    # The champion, its versions and the published forecasts are those of the last good run.
    assert corrupt["latest"] == good["latest"] and corrupt["versions"] == good["versions"]
    pd.testing.assert_frame_equal(corrupt["predictions"], good["predictions"])
