"""The polls feed (issue 15): the inbox sensor requests one ingest run per new file content, a bad file fails its
blocking check naming row and column and re-forecasts nothing, a good one adds its polls to the tidy table and
requests the day's forecast and the timeline once."""

import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from election_assets.defs.real import inbox
from election_assets.defs.real_ingest import assets as real_ingest
from election_assets.defs.real_ingest.assets import validate_inbox
from election_assets.real import schemas
from election_assets.real.campaign import campaign_day_of
from election_assets.real.polls import InboxFormatError, read_polls_inbox, tidy_polls
from election_assets.real.sources import SHIPPED_REAL_DATA_DIR, SOURCE_FILES, read_source
from election_assets_tests.helpers import project_resources

SHIPPED_POLLS = ("state_polls", "polls_538", "polls_2024")


def _shipped_text(name: str) -> pd.DataFrame:
    """A shipped poll file's rows as written (text), the way a user would copy them into a new file."""
    return pd.read_csv(SHIPPED_REAL_DATA_DIR / SOURCE_FILES[name].filename, dtype=str, keep_default_na=False)


def polls_538_file(first_id: int = 990_001, rows: int = 6) -> pd.DataFrame:
    """New 2024 polls in FiveThirtyEight's format: 2020 state polls moved to October 2024, with new ids."""
    frame = _shipped_text("polls_538")
    frame = frame[(frame["year"] == "2020") & (frame["location"] != "US") & (frame["partisan"] == "")].head(rows)
    ids = [str(first_id + i) for i in range(len(frame))]
    return frame.assign(
        poll_id=ids, question_id=ids, year="2024", polldate="10/20/2024", electiondate="11/5/2024"
    ).reset_index(drop=True)


def rieke_file(first_id: int = 980_001, rows: int = 5) -> pd.DataFrame:
    """New 2024 polls in Rieke's format (Harris questions, late October), with new ids."""
    frame = _shipped_text("polls_2024")
    frame = frame[(frame["dem_candidate"] == "Harris") & (frame["internal"] == "0")].head(rows)
    return frame.assign(poll_id=[str(first_id + i) for i in range(len(frame))], end_date="2024-10-25").reset_index(
        drop=True
    )


def drop(folder: Path, name: str, frame: pd.DataFrame, age_seconds: float = 60) -> Path:
    """Write ``frame`` into the inbox as ``name``, dated ``age_seconds`` ago (settled: not being copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    stamp = path.stat().st_mtime - age_seconds
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def after_the_election(monkeypatch):
    monkeypatch.setattr(inbox, "today", lambda: date(2025, 3, 1))


# --- Today's partition ----------------------------------------------------------------------------------------


def test_the_campaign_day_of_a_date_is_the_date_clamped_into_the_campaign():
    assert campaign_day_of(date(2024, 9, 15)) == date(2024, 9, 15)
    assert campaign_day_of(date(2024, 3, 1)) == date(2024, 8, 1)
    assert campaign_day_of(date(2024, 11, 5)) == date(2024, 11, 4)
    assert campaign_day_of(date(2026, 1, 1)) == date(2024, 11, 4)


# --- The inbox sensor -----------------------------------------------------------------------------------------


def _tick(sandbox, cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None]:
    """One evaluation of the inbox sensor with ``cursor`` (a restarted daemon starts from the saved one)."""
    context = dg.build_sensor_context(cursor=cursor, resources=project_resources(sandbox.env, "storage"))
    result = inbox.polls_inbox_sensor(context)
    return ([] if isinstance(result, dg.SkipReason) else list(result)), context.cursor


def test_the_sensor_requests_one_ingest_run_per_new_file_content(sandbox, after_the_election):
    folder = sandbox.data_dir / "polls_inbox"
    assert sandbox.settings().polls_inbox_dir == folder  # the default: <ELECTION_DATA_DIR>/polls_inbox
    assert _tick(sandbox)[0] == []  # no inbox yet

    first = drop(folder, "a.csv", polls_538_file())
    (request,), cursor = _tick(sandbox)
    digest = inbox.file_hash(first)
    assert request.run_key == f"polls-inbox-{digest}"
    assert request.tags[inbox.FILE_TAG] == "a.csv"
    assert request.tags[inbox.HASH_TAG] == digest
    assert request.tags[inbox.DAY_TAG] == "2024-11-04"

    assert _tick(sandbox, cursor)[0] == []  # a restart: the saved cursor, nothing repeated
    shutil.copy(first, folder / "b.csv")  # the same content under another name
    stamp = first.stat().st_mtime
    os.utime(folder / "b.csv", (stamp, stamp))
    requests, cursor = _tick(sandbox, cursor)
    assert requests == []

    drop(folder, "c.csv", rieke_file())
    (request,), cursor = _tick(sandbox, cursor)
    assert request.tags[inbox.FILE_TAG] == "c.csv"
    assert _tick(sandbox, cursor)[0] == []
    assert set(inbox.InboxState.from_cursor(cursor).requested) == {digest, inbox.file_hash(folder / "c.csv")}


def test_a_file_still_being_copied_waits_for_the_next_tick(sandbox):
    folder = sandbox.data_dir / "polls_inbox"
    drop(folder, "fresh.csv", polls_538_file(), age_seconds=0)
    assert _tick(sandbox)[0] == []
    new, state = inbox.new_files(folder, inbox.InboxState(), now=(folder / "fresh.csv").stat().st_mtime + 60)
    assert [file.path.name for file in new] == ["fresh.csv"] and len(state.requested) == 1


def test_the_cursor_forgets_only_old_hashes_of_files_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(inbox, "REMEMBERED_HASHES", 2)
    drop(tmp_path, "kept.csv", polls_538_file())
    state = inbox.InboxState(["gone1", "gone2", "gone3"])
    new, state = inbox.new_files(tmp_path, state, now=1e12)
    assert len(new) == 1 and state.requested == ["gone2", "gone3", new[0].sha256]


# --- Reading and checking the inbox ---------------------------------------------------------------------------


def test_an_empty_or_missing_inbox_is_an_empty_table_that_passes(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        frame = read_polls_inbox(folder)
        assert frame.empty and list(frame.columns) == ["source_file", "source_format", "source_row"]
        assert validate_inbox(frame, schemas.RAW_POLLS_INBOX).passed


def test_an_unrecognised_file_is_a_failure_naming_it_and_the_columns_expected(tmp_path):
    drop(tmp_path, "notes.csv", pd.DataFrame({"state": ["OH"], "harris": [48], "trump": [50]}))
    with pytest.raises(InboxFormatError, match=r"notes\.csv.*state, harris, trump.*cand1_pct.*dem_candidate"):
        read_polls_inbox(tmp_path)


def test_both_formats_are_read_and_checked_file_by_file(tmp_path):
    drop(tmp_path, "a.csv", polls_538_file())
    drop(tmp_path, "b.csv", rieke_file())
    frame = read_polls_inbox(tmp_path)
    assert frame.groupby("source_file")["source_format"].first().to_dict() == {
        "a.csv": "fivethirtyeight",
        "b.csv": "rieke",
    }
    result = validate_inbox(frame, schemas.RAW_POLLS_INBOX)
    assert result.passed, result.description
    assert result.metadata["files"].value == 2


def test_a_value_that_is_not_a_number_is_named_by_row_and_column(tmp_path):
    frame = rieke_file()
    frame.loc[2, "K"] = "n/a?"
    drop(tmp_path, "typo.csv", frame)
    result = validate_inbox(read_polls_inbox(tmp_path), schemas.RAW_POLLS_INBOX)
    assert not result.passed
    assert result.description == (
        "typo.csv (raw_polls_inbox_2024): column 'K' failed rule 'coerce_dtype('int64')' on 1 row(s), "
        "e.g. row 2 value='n/a?'"
    )


# --- The tidy poll table --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> dict[str, pd.DataFrame]:
    return {name: read_source(name) for name in SHIPPED_POLLS}


def test_the_tidy_table_adds_inbox_polls_and_counts_a_repeated_poll_once(tmp_path, shipped):
    new = polls_538_file()
    repeat_of_shipped = _shipped_text("polls_538").iloc[[0]]  # a 2000 poll the shipped file already has
    drop(tmp_path, "1_new.csv", pd.concat([new, repeat_of_shipped], ignore_index=True))
    drop(tmp_path, "2_again.csv", pd.concat([new.head(2), polls_538_file(first_id=990_101, rows=1)]))
    drop(tmp_path, "3_rieke.csv", rieke_file())
    raw = read_polls_inbox(tmp_path)
    assert validate_inbox(raw, schemas.RAW_POLLS_INBOX).passed
    tidy = tidy_polls(*(shipped[name] for name in SHIPPED_POLLS), schemas.typed_inbox(raw))
    without = tidy_polls(*(shipped[name] for name in SHIPPED_POLLS))

    mine = tidy.frame[tidy.frame["source"] == "inbox"]
    assert len(mine) == len(new) + 1 + len(rieke_file())
    assert set(mine["source_poll_id"]) == {
        *(f"fivethirtyeight:{i}" for i in [*new["poll_id"], "990101"]),
        *(f"rieke:{i}" for i in rieke_file()["poll_id"]),
    }
    assert set(mine["year"]) == {2024}
    assert (
        tidy.counts["inbox.rows_in"]
        == len(raw)
        == len(mine)
        + sum(n for key, n in tidy.counts.items() if key.startswith("inbox.") and key.endswith("_excluded"))
    )
    assert tidy.counts["inbox.duplicate_of_shipped_excluded"] == 1
    assert tidy.counts["inbox.duplicate_of_earlier_file_excluded"] == 2
    assert tidy.frame[tidy.frame["source"] != "inbox"].reset_index(drop=True).equals(without.frame)
    assert schemas.POLLS.validate(tidy.frame) is not None


# --- The ingest job and the follow-up sensor ------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed(new_sandbox, tmp_path_factory):
    """A sandbox whose Dagster instance has the shipped poll files ingested (as ``make real`` leaves it)."""
    sandbox = new_sandbox("polls_feed")
    definitions = [*dg.load_assets_from_modules([real_ingest]), *dg.load_asset_checks_from_modules([real_ingest])]
    with dg.DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        with sandbox.environment():
            result = dg.materialize(
                definitions,
                instance=instance,
                selection=[f"raw_{name}" for name in SHIPPED_POLLS],
                resources=project_resources(sandbox.env, "storage"),
            )
        assert result.success
        yield sandbox, instance


def _ingest(feed, files: dict[str, pd.DataFrame]):
    sandbox, instance = feed
    folder = sandbox.data_dir / "polls_inbox"
    shutil.rmtree(folder, ignore_errors=True)
    for name, frame in files.items():
        drop(folder, name, frame)
    job = sandbox.definitions().resolve_job_def("polls_inbox_ingest")
    with sandbox.environment():
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return result, instance.get_run_by_id(result.run_id)


def _check(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_polls_inbox_schema"]
    return evaluation


def _materialized(result) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_a_bad_538_file_fails_the_check_naming_row_and_column_and_forecasts_nothing(feed, after_the_election):
    bad = polls_538_file()
    bad.loc[3, "cand1_pct"] = "250"
    result, run = _ingest(feed, {"good.csv": rieke_file(), "bad.csv": bad})
    assert not result.success
    assert _materialized(result) == {"raw_polls_inbox"}  # the tidy table, so every forecast, is left as it was
    evaluation = _check(result)
    assert not evaluation.passed
    assert evaluation.description.startswith("bad.csv (raw_polls_inbox_538): ")
    assert "column 'cand1_pct' failed rule 'in_range(0.0, 100.0)' on 1 row(s), e.g. row 3 value=250.0" in (
        evaluation.description
    )
    assert inbox.forecast_requests(run) == []


def test_a_bad_rieke_file_fails_the_check_naming_row_and_columns(feed):
    bad = rieke_file()
    bad.loc[1, "Y"] = str(int(bad.loc[1, "K"]) + 1)
    result, run = _ingest(feed, {"rieke.csv": bad})
    assert not result.success and _materialized(result) == {"raw_polls_inbox"}
    description = _check(result).description
    assert "column 'Y' failed rule 'Y <= K' on 1 row(s), e.g. row 1" in description
    assert "column 'K' failed rule 'Y <= K' on 1 row(s), e.g. row 1" in description
    assert "column 'pollster'" not in description  # a rule across columns names its columns, not the whole row
    assert inbox.forecast_requests(run) == []


def test_a_good_file_is_ingested_and_requests_the_days_forecast_and_the_timeline_once(feed, after_the_election):
    sandbox, instance = feed
    result, run = _ingest(feed, {"new.csv": polls_538_file()})
    assert result.success and _materialized(result) == {"raw_polls_inbox", "polls"}
    assert _check(result).passed
    polls = result.asset_materializations_for_node("polls")[0].metadata
    assert polls["counts"].value["inbox.rows_in"] == 6
    assert polls["polls_per_year"].value["2024 inbox"] == 6

    (event,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
    context = dg.build_run_status_sensor_context(
        sensor_name=inbox.polls_inbox_forecast_sensor.name,
        dagster_event=event.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    )
    forecast, timeline = inbox.polls_inbox_forecast_sensor(context)
    assert (forecast.job_name, forecast.partition_key) == ("real_daily_forecast", "2024-11-04")
    assert forecast.run_key == f"polls-inbox-forecast-{run.run_id}"
    assert (timeline.job_name, timeline.partition_key) == ("real_timeline", None)
    assert timeline.run_key == f"polls-inbox-timeline-{run.run_id}"


def test_the_feed_is_wired_into_the_code_location(feed):
    sandbox, _ = feed
    definitions = sandbox.definitions()
    sensors = {sensor.name: sensor for sensor in definitions.sensors}
    assert sensors["polls_inbox_sensor"].job_name == "polls_inbox_ingest"
    assert sensors["polls_inbox_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["polls_inbox_forecast_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    timeline_job = definitions.resolve_job_def("real_timeline")
    assert {key.to_user_string() for key in timeline_job.asset_layer.selected_asset_keys} == {"campaign_timeline"}
    ingest = definitions.resolve_job_def("polls_inbox_ingest")
    assert {key.to_user_string() for key in ingest.asset_layer.selected_asset_keys} == {"raw_polls_inbox", "polls"}


def test_the_docs_example_file_is_ingested(tmp_path, shipped):
    """The file docs/real-mode.md tells a user to drop passes the check and adds its three 2024 polls."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "real-mode.md").read_text()
    block = text.split("## Polls feed", 1)[1].split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "polls_late_october.csv").write_text("\n".join(line.strip() for line in block.splitlines()) + "\n")
    raw = read_polls_inbox(tmp_path)
    assert validate_inbox(raw, schemas.RAW_POLLS_INBOX).passed
    tidy = tidy_polls(*(shipped[name] for name in SHIPPED_POLLS), schemas.typed_inbox(raw))
    mine = tidy.frame[tidy.frame["source"] == "inbox"]
    assert sorted(mine["geography"]) == ["MI", "PA", "US"] and set(mine["year"]) == {2024}
