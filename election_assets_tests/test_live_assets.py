"""Election night's Dagster assets (issue 16), materialized for real on a temporary instance: the prior of 2012 from
the shipped data (only real_ingest and the 2004-2012 features upstream of it), and the score of a hand-written replay
summary with one wrong call planted, with its MLflow run."""

import json
from dataclasses import dataclass

import dagster as dg
import mlflow
import pandas as pd
import pytest

from election_assets.core.paths import StorePaths
from election_assets.defs.live.assets import PRIOR_YEARS, election_night_prior
from election_assets.defs.resources import ProjectStorage
from election_assets.live.prior import ElectionNightPrior
from election_assets.live.replay import REPLAY_YEARS
from election_assets.live.scoring import ReplaySummaryError, read_replay_summary, score_replay
from election_assets.real.evaluation import electoral_votes
from election_assets.real.features import NEXT_ELECTION, state_shares

# A replayed year whose prior learns from two elections (2004, 2008), so the walk-forward parts are exercised.
PRIOR_YEAR = 2012
FEATURE_PARTITIONS = ("2004", "2008", "2012")
SCORED_YEAR = 2016


@dataclass
class Live:
    sandbox: object
    definitions: dg.Definitions
    instance: dg.DagsterInstance
    prior_result: object = None

    def run(self, job: str, partition: int | str, raise_on_error: bool = True):
        return self.definitions.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=str(partition), raise_on_error=raise_on_error
        )

    def paths(self) -> StorePaths:
        return StorePaths.from_env(self.sandbox.env)


@pytest.fixture(scope="module")
def live(new_sandbox):
    """real_ingest and the features of 2004-2012 (what the 2012 prior reads, and no later year) on a temporary
    instance, then the 2012 prior."""
    sandbox = new_sandbox("live_assets")
    definitions = sandbox.definitions()
    with dg.instance_for_test() as instance, sandbox.environment():
        live = Live(sandbox, definitions, instance)
        assert definitions.resolve_job_def("real_ingest").execute_in_process(instance=instance).success
        for year in FEATURE_PARTITIONS:
            assert live.run("real_features", year).success
        live.prior_result = live.run("live_prior", PRIOR_YEAR)
        yield live


def _metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_the_prior_partitions_are_the_replayed_years_and_the_next_election():
    assert PRIOR_YEARS == (*REPLAY_YEARS, NEXT_ELECTION) == (2008, 2012, 2016, 2020, 2024)


def test_the_prior_is_written_where_the_updater_reads_it_and_reads_back(live):
    assert live.prior_result.success
    path = live.paths().live_prior(PRIOR_YEAR)
    prior = ElectionNightPrior.read(path, PRIOR_YEAR)
    assert prior.manifest.trained_through == 2008 < PRIOR_YEAR
    assert "trained on 2004,2008" in prior.manifest.source and "as of 2012-11-05" in prior.manifest.source
    assert sum(prior.electoral_votes.values()) == 538 and len(set(prior.state_po)) == 51
    metadata = _metadata(live.prior_result, "election_night_prior")
    assert metadata["year"] == PRIOR_YEAR and metadata["trained_through"] == 2008
    assert metadata["training_years"] == [2004, 2008]
    assert metadata["counties"] == len(prior.county_fips) > 3000
    assert metadata["sha256"] == json.loads(path.read_text())["sha256"]
    assert metadata["path"] == str(path) and metadata["source"] == prior.manifest.source
    assert (metadata["noise_national"], metadata["noise_state"], metadata["noise_county"]) == (
        prior.noise.national,
        prior.noise.state,
        prior.noise.county,
    )
    record = live.instance.get_latest_materialization_event(dg.AssetKey("election_night_prior"))
    assert record.asset_materialization.tags["dagster/data_version"] == metadata["sha256"]


def _features(live: Live) -> dict[str, pd.DataFrame]:
    """The election_features partitions the prior read, loaded from the instance's storage."""
    return {
        year: live.definitions.load_asset_value("election_features", partition_key=year, instance=live.instance)
        for year in FEATURE_PARTITIONS
    }


def _prior_document(
    live: Live, features: dict[str, pd.DataFrame], tmp_path, state_returns: pd.DataFrame | None = None
) -> dict:
    """The prior file the asset writes from ``features`` and ``state_returns`` (default: the instance's) and the
    instance's polls (invoked directly, into ``tmp_path``), manifest aside."""
    storage = ProjectStorage(
        data_dir=str(tmp_path),
        model_store_dir=str(tmp_path / "model_store"),
        real_model_store_dir=str(tmp_path / "real_model_store"),
        reports_dir=str(tmp_path / "reports"),
        real_data_dir=str(tmp_path / "sources"),
        polls_inbox_dir=str(tmp_path / "inbox"),
    )
    context = dg.build_asset_context(partition_key=str(PRIOR_YEAR))
    if state_returns is None:
        state_returns = live.definitions.load_asset_value("state_returns", instance=live.instance)
    polls = live.definitions.load_asset_value("polls", instance=live.instance)
    election_night_prior(context, features_by_year=features, state_returns=state_returns, polls=polls, storage=storage)
    document = json.loads(StorePaths(tmp_path, tmp_path, tmp_path, tmp_path).live_prior(PRIOR_YEAR).read_text())
    return {key: value for key, value in document.items() if key != "manifest"}


def test_no_county_result_of_the_target_year_reaches_the_prior(live, tmp_path):
    features = _features(live)
    target = features[str(PRIOR_YEAR)]
    outcome_columns = [column for column in target.columns if column.startswith("outcome_")]
    assert "outcome_dem_share" in outcome_columns
    scrambled = target.copy()
    for column in outcome_columns:  # every county's result replaced by another county's, shares turned over
        values = scrambled[column].sample(frac=1.0, random_state=3).to_numpy()
        scrambled[column] = 1 - values if column.endswith("share") else values
    assert not scrambled["outcome_dem_share"].equals(target["outcome_dem_share"])
    # The state results of the year (which give its poll errors) turned over as well.
    returns = live.definitions.load_asset_value("state_returns", instance=live.instance)
    of_year = returns["year"] == PRIOR_YEAR
    turned = returns.copy()
    turned.loc[of_year, ["dem_votes", "rep_votes"]] = returns.loc[of_year, ["rep_votes", "dem_votes"]].to_numpy()
    written = json.loads(live.paths().live_prior(PRIOR_YEAR).read_text())
    rebuilt = _prior_document(live, {**features, str(PRIOR_YEAR): scrambled}, tmp_path / "scrambled", turned)
    assert rebuilt == {key: value for key, value in written.items() if key != "manifest"}
    # The comparison can see a change: the results of a training year do move the prior.
    training = features["2008"].assign(outcome_dem_share=features["2008"]["outcome_dem_share"] * 0.9)
    changed = _prior_document(live, {**features, "2008": training}, tmp_path / "training_changed")
    assert changed["sha256"] != written["sha256"]


def test_the_prior_of_a_year_reads_no_later_election(live):
    # The 2012 prior ran with only 2004-2012 features materialized; its input mapping names exactly those.
    asset = live.definitions.resolve_assets_def("election_night_prior")
    mapping = asset.get_partition_mapping(dg.AssetKey("election_features"))
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        asset.partitions_def.subset_with_partition_keys([str(PRIOR_YEAR)]),
        asset.partitions_def,
        live.definitions.resolve_assets_def("election_features").partitions_def,
    )
    assert set(upstream.partitions_subset.get_partition_keys()) == set(FEATURE_PARTITIONS)


# A hand-written replay summary: five states called, Wisconsin wrongly (Trump carried it in 2016).
SUMMARY_2016 = {
    "year": SCORED_YEAR,
    "prior": {"source": "the walk-forward model (swing_forecaster) trained on 2004,2008,2012", "trained_through": 2012},
    "states_called": 5,
    "wrong_calls": ["WI"],
    "national_called_at_share": 0.93,
    "messages_per_second": 812.5,
    "calls": {
        "CA": {"winner": "D", "actual_winner": "D", "counted_share": 0.21},
        "NY": {"winner": "D", "actual_winner": "D", "counted_share": 0.34},
        "TX": {"winner": "R", "actual_winner": "R", "counted_share": 0.58},
        "PA": {"winner": "R", "actual_winner": "R", "counted_share": 0.91},
        "WI": {"winner": "D", "actual_winner": "R", "counted_share": 0.64},
    },
    "median_called_share": 0.58,
    "national_winner": "R",
    "messages": 11_750,
    "dead_lettered": 2,
    "duplicates": 3,
    "seconds": 14.46,
}


@pytest.fixture(scope="module")
def scored(live):
    path = live.paths().replay_summary(SCORED_YEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SUMMARY_2016))
    return live.run("live_replay_score", SCORED_YEAR)


def test_the_replay_score_recomputes_the_wrong_calls_and_reports_them(scored):
    assert scored.success
    metadata = _metadata(scored, "replay_score")
    assert metadata["year"] == SCORED_YEAR and metadata["states_called"] == 5
    assert metadata["wrong_calls"] == ["WI"] and metadata["wrong_call_count"] == 1
    assert metadata["median_called_share"] == pytest.approx(0.58)
    assert metadata["national_winner"] == metadata["actual_national_winner"] == "R"
    assert metadata["national_called_at_share"] == pytest.approx(0.93)
    assert metadata["summary_disagreements"] == []
    assert len(metadata["uncalled"]) == 46 and "FL" in metadata["uncalled"]
    assert metadata["messages"] == 11_750 and metadata["dead_lettered"] == 2
    table = metadata["calls"]
    assert table.index("| CA |") < table.index("| TX |") < table.index("| WI |") < table.index("| PA |")
    assert "| WI | D | R | 64.0% | **wrong** |" in table and "| PA | R | R | 91.0% | right |" in table


def test_the_replay_score_is_an_mlflow_run_of_the_year(live, scored):
    settings = live.sandbox.settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    runs = mlflow.search_runs(experiment_names=[f"{settings.mlflow_experiment}-real"])
    (row,) = runs[runs["tags.mlflow.runName"] == f"replay-{SCORED_YEAR}"].itertuples()
    run = row._asdict()
    assert run["run_id"] == _metadata(scored, "replay_score")["mlflow_run_id"]
    logged = mlflow.get_run(run["run_id"]).data
    assert logged.tags["replay_year"] == "2016" and logged.tags["mode"] == "live"
    assert logged.tags["prior_trained_through"] == "2012"
    assert logged.params["wrong_calls"] == "WI"
    assert logged.metrics["wrong_calls"] == 1 and logged.metrics["states_called"] == 5
    assert logged.metrics["called_share.WI"] == pytest.approx(0.64)
    assert logged.metrics["national_called_at_share"] == pytest.approx(0.93)
    assert logged.metrics["national_winner_right"] == 1.0
    artifacts = [item.path for item in mlflow.MlflowClient().list_artifacts(run["run_id"])]
    assert artifacts == [f"replay_{SCORED_YEAR}.json"]


def test_a_missing_replay_summary_fails_the_run_and_says_how_to_make_it(live):
    result = live.run("live_replay_score", 2012, raise_on_error=False)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "make live-demo YEAR=2012" in message and "replay_2012.json" in message


def test_the_score_trusts_the_results_not_the_summarys_own_verdicts(live):
    state_returns = live.definitions.load_asset_value("state_returns", instance=live.instance)
    lying = {**SUMMARY_2016, "wrong_calls": [], "states_called": 4}
    lying["calls"] = {**SUMMARY_2016["calls"], "WI": {"winner": "D", "actual_winner": "D", "counted_share": 0.64}}
    score = score_replay(lying, state_shares(state_returns, SCORED_YEAR), electoral_votes(SCORED_YEAR))
    assert score.wrong_calls == ("WI",)
    assert len(score.disagreements) == 3
    assert any("WI: the summary counts its call as right" in note for note in score.disagreements)
    # Clinton carried 20 states and DC: 233 electoral votes with all four of Maine's (Trump won its 2nd district).
    assert score.actual_national_winner == "R" and score.actual_dem_electoral_votes == 233


def test_a_counter_the_replay_could_not_measure_is_left_out_of_the_metrics():
    unmeasured = {**SUMMARY_2016, "messages_per_second": None}
    score = score_replay(unmeasured, pd.Series({"CA": 0.6, "NY": 0.6, "TX": 0.4, "PA": 0.49, "WI": 0.49}), {"CA": 1})
    assert score.run["messages_per_second"] is None and "messages_per_second" not in score.metrics()
    assert score.metrics()["wrong_calls"] == 1 and score.uncalled == ()


def test_a_summary_of_another_year_or_without_its_keys_is_refused(tmp_path):
    path = tmp_path / "replay_2016.json"
    path.write_text(json.dumps({**SUMMARY_2016, "year": 2020}))
    with pytest.raises(ReplaySummaryError, match="replay of 2020, not 2016"):
        read_replay_summary(path, 2016)
    path.write_text(json.dumps({key: value for key, value in SUMMARY_2016.items() if key != "calls"}))
    with pytest.raises(ReplaySummaryError, match="lacks calls"):
        read_replay_summary(path, 2016)
