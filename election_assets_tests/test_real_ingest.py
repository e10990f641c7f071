"""The real_ingest assets materialized for real (shipped files, temporary Dagster instance), and a corrupt source file
stopped by its blocking Pandera check with a message naming column, rule and rows."""

import gzip

import dagster as dg
import pytest

from election_assets.defs.real_ingest import assets as real_ingest
from election_assets.real.catalog import RAW_SOURCES
from election_assets.real.sources import SHIPPED_REAL_DATA_DIR, SOURCE_FILES, read_source
from election_assets_tests.helpers import project_resources

RAW = [f"raw_{source.name}" for source in RAW_SOURCES]
TIDY = ["county_returns", "state_returns", "polls", "county_demographics"]


def materialize(sandbox, instance: dg.DagsterInstance, selection: list[str] | None = None, **env: str):
    """Materialize real_ingest (or ``selection`` of it) with its checks, in the sandbox's environment."""
    definitions = [
        *dg.load_assets_from_modules([real_ingest]),
        *dg.load_asset_checks_from_modules([real_ingest]),
    ]
    sandbox.env.update(env)
    resources = project_resources(sandbox.env, "storage")
    with sandbox.environment():
        return dg.materialize(
            definitions, instance=instance, selection=selection, resources=resources, raise_on_error=False
        )


@pytest.fixture(scope="module")
def run(new_sandbox, tmp_path_factory):
    sandbox = new_sandbox("real_ingest")
    with dg.DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        result = materialize(sandbox, instance)
        yield result, instance


@pytest.fixture(scope="module")
def metadata(run) -> dict[str, dict]:
    result, _ = run
    return {
        event.asset_key.to_user_string(): {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def test_every_real_ingest_asset_materializes_and_every_check_passes(run, metadata):
    result, _ = run
    assert result.success
    assert set(metadata) == set(RAW) | set(TIDY)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(RAW) + len(TIDY)
    assert [(e.asset_key.to_user_string(), e.description) for e in evaluations if not e.passed] == []


def test_the_group_is_real_ingest_and_outside_the_main_job(new_sandbox):
    definitions = new_sandbox("real_ingest_defs").definitions()
    graph = definitions.resolve_asset_graph()
    group = dg.AssetSelection.groups(real_ingest.GROUP).resolve(graph)
    assert {key.to_user_string() for key in group} == set(RAW) | set(TIDY)
    main_job = definitions.resolve_job_def("election_pipeline").asset_layer.selected_asset_keys
    assert not group & set(main_job)


def test_tables_are_versioned_by_content_and_code(run, metadata):
    _, instance = run
    for name in RAW + TIDY:
        record = instance.get_latest_materialization_event(dg.AssetKey(name))
        assert record.asset_materialization.tags["dagster/data_version"] == metadata[name]["fingerprint"]
    for asset in dg.load_assets_from_modules([real_ingest]):
        assert set(asset.code_versions_by_key.values()) == {real_ingest.CODE_VERSION}


def test_raw_metadata_has_row_counts_and_the_source_folder(metadata):
    assert metadata["raw_county_returns"]["dagster/row_count"] == 72_617
    assert metadata["raw_state_polls"]["rows"] == 5_666
    assert metadata["raw_polls_538"]["rows"] == 3_004
    assert metadata["raw_polls_2024"]["rows"] == 1_651
    assert metadata["raw_ers_education"]["source_directory"] == str(SHIPPED_REAL_DATA_DIR)


def test_tidy_metadata_counts_every_quirk_and_exclusion(metadata):
    county = metadata["county_returns"]
    assert county["rows_in"] == 72_617 == county["counts"]["rows_aggregated"] + county["rows_excluded"]
    assert county["counts"]["dc_fips_filled"] == 5
    assert county["counts"]["kansas_city_merged"] == 21
    assert county["counts"]["no_fips_rows_excluded"] == 52
    assert county["counts"]["vote_mode_rows_superseded_excluded"] == 420
    assert county["national_totals"]["2020"]["dem_votes"] == 81_264_648 - 1_276
    assert metadata["state_returns"]["counts"]["party_lines_summed"] == 4
    polls = metadata["polls"]
    assert polls["rows_in"] == 5_666 + 3_004 + 1_651 == polls["rows"] + polls["rows_excluded"]
    assert polls["counts"]["rieke.other_candidate_question_excluded"] == 71
    assert polls["counts"]["fivethirtyeight.duplicate_of_economist_excluded"] > 0
    assert polls["polls_per_year"]["2024 rieke"] == polls["rows"] - sum(
        n for key, n in polls["polls_per_year"].items() if key != "2024 rieke"
    )
    demographics = metadata["county_demographics"]["counts"]
    assert demographics["ers_education.bedford_city_merged"] == 1
    assert demographics["election_context.kansas_city_excluded"] == 1


@pytest.fixture
def corrupt_folder(tmp_path):
    """The county file's Alabama 2000 rows with a county FIPS that is not a number and a negative vote count."""
    frame = read_source("county_returns", SHIPPED_REAL_DATA_DIR)
    frame = frame[(frame["year"] == 2000) & (frame["state_po"] == "AL")].reset_index(drop=True)
    frame.loc[5, "county_fips"] = "1O03"
    frame.loc[9, "candidatevotes"] = -40
    with gzip.open(tmp_path / SOURCE_FILES["county_returns"].filename, "wt") as handle:
        frame.to_csv(handle, index=False)
    return tmp_path


def test_a_corrupt_source_file_fails_the_blocking_check_and_stops_the_tidy_table(sandbox, tmp_path, corrupt_folder):
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        result = materialize(
            sandbox,
            instance,
            selection=["raw_county_returns", "county_returns"],
            ELECTION_REAL_DATA_DIR=str(corrupt_folder),
        )
    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_county_returns"}
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_county_returns_schema"]
    assert not evaluation.passed
    message = evaluation.description
    assert (
        "column 'county_fips' failed rule 'str_matches('^\\d{1,5}$')' on 1 row(s), e.g. row 5 value='1O03'" in message
    )
    assert "column 'candidatevotes' failed rule 'greater_than_or_equal_to(0)' on 1 row(s), e.g. row 9" in message


@pytest.fixture
def corrupt_poll_folder(tmp_path):
    """The 538 poll file with a Democratic share over 100 and a poll_id repeated."""
    frame = read_source("polls_538", SHIPPED_REAL_DATA_DIR).head(40).reset_index(drop=True)
    frame.loc[3, "cand1_pct"] = 140.0
    frame.loc[7, "poll_id"] = frame.loc[6, "poll_id"]
    dates = {column: frame[column].dt.strftime("%-m/%-d/%Y") for column in ("polldate", "electiondate")}
    with gzip.open(tmp_path / SOURCE_FILES["polls_538"].filename, "wt") as handle:
        frame.assign(**dates).to_csv(handle, index=False)
    return tmp_path


def test_a_corrupt_poll_file_fails_its_check_naming_row_and_column(sandbox, tmp_path, corrupt_poll_folder):
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        result = materialize(
            sandbox, instance, selection=["raw_polls_538"], ELECTION_REAL_DATA_DIR=str(corrupt_poll_folder)
        )
    assert not result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    message = evaluation.description
    assert "column 'cand1_pct' failed rule 'in_range(0.0, 100.0)' on 1 row(s), e.g. row 3 value=140.0" in message
    assert "column 'poll_id'" in message and "row 7" in message
