"""Election night's results stream (issue 16, first part): the replay's order, the message schema, and a real
publish of one small state to the machine's NATS JetStream."""

import asyncio
import json
import socket
import uuid
from datetime import datetime

import jsonschema
import pandas as pd
import pytest

from election_assets.core.live import LiveSettings
from election_assets.live import stream
from election_assets.live.replay import (
    POLL_CLOSING_ET,
    REPLAY_YEARS,
    election_day,
    load_county_returns,
    message_schema,
    replay_messages,
)
from election_assets.settings import PipelineSettings, SettingsError

NATS_HOST, NATS_PORT = "127.0.0.1", 4222
# The small state published to NATS: Delaware's three counties.
SMALL_STATE = "DE"


@pytest.fixture(scope="module")
def county_returns() -> pd.DataFrame:
    return load_county_returns()


@pytest.fixture(scope="module")
def messages_2020(county_returns: pd.DataFrame) -> list[dict]:
    return replay_messages(county_returns, 2020, seed=7)


def _nats_answers() -> bool:
    try:
        with socket.create_connection((NATS_HOST, NATS_PORT), timeout=1):
            return True
    except OSError:
        return False


def test_every_state_has_a_poll_closing_time(county_returns):
    assert set(county_returns["state_po"]) <= set(POLL_CLOSING_ET)
    assert len(POLL_CLOSING_ET) == 51
    assert POLL_CLOSING_ET["GA"] == 19 * 60 and POLL_CLOSING_ET["OH"] == 19 * 60 + 30
    assert POLL_CLOSING_ET["CA"] == 23 * 60 and POLL_CLOSING_ET["AK"] == 25 * 60


def test_election_days():
    assert [election_day(year).isoformat() for year in REPLAY_YEARS] == [
        "2008-11-04",
        "2012-11-06",
        "2016-11-08",
        "2020-11-03",
    ]


def test_states_open_in_order_of_poll_closing_time(messages_2020):
    first_seen: list[str] = []
    for message in messages_2020:
        if message["state_po"] not in first_seen:
            first_seen.append(message["state_po"])
    assert len(first_seen) == 51
    closing = [POLL_CLOSING_ET[state] for state in first_seen]
    assert closing == sorted(closing)
    # No state reports before its polls close, and the simulated times never go backwards.
    times = [datetime.fromisoformat(message["reported_at"]) for message in messages_2020]
    assert times == sorted(times)
    midnight = datetime.fromisoformat("2020-11-03T00:00:00-05:00")
    for message, reported in zip(messages_2020, times, strict=True):
        assert (reported - midnight).total_seconds() / 60 > POLL_CLOSING_ET[message["state_po"]]
    # Western states start while eastern ones are still counting: the stream interleaves them.
    last_ga = max(i for i, message in enumerate(messages_2020) if message["state_po"] == "GA")
    first_ca = min(i for i, message in enumerate(messages_2020) if message["state_po"] == "CA")
    assert first_ca < last_ga


def test_every_county_counts_up_to_its_final_returns(county_returns, messages_2020):
    final = county_returns[county_returns["year"] == 2020].set_index("county_fips")
    by_county: dict[str, list[dict]] = {}
    for message in messages_2020:
        by_county.setdefault(message["county_fips"], []).append(message)
    assert set(by_county) == set(final.index)
    tilted = 0
    for fips, steps in by_county.items():
        assert 3 <= len(steps) <= 4
        assert [step["step"] for step in steps] == list(range(1, len(steps) + 1))
        assert {step["steps"] for step in steps} == {len(steps)}
        assert [step["status"] for step in steps] == ["partial"] * (len(steps) - 1) + ["complete"]
        for column in ("dem_votes", "rep_votes", "total_votes", "counted_share"):
            values = [step[column] for step in steps]
            assert values == sorted(values), (fips, column, values)
        assert all(step["counted_share"] < 1 for step in steps[:-1])
        assert all(step["dem_votes"] + step["rep_votes"] <= step["total_votes"] for step in steps)
        last, row = steps[-1], final.loc[fips]
        assert (last["dem_votes"], last["rep_votes"], last["total_votes"], last["counted_share"]) == (
            row["dem_votes"],
            row["rep_votes"],
            row["total_votes"],
            1.0,
        )
        first = steps[0]
        if first["dem_votes"] * row["rep_votes"] != first["rep_votes"] * row["dem_votes"]:
            tilted += 1
    # A partial count is not the final count scaled down: its two-party split differs.
    assert tilted > 0.9 * len(by_county)
    assert len({message["message_id"] for message in messages_2020}) == len(messages_2020)


def test_the_seeded_order_is_deterministic(county_returns, messages_2020):
    assert replay_messages(county_returns, 2020, seed=7) == messages_2020
    other = replay_messages(county_returns, 2020, seed=8)
    assert [m["message_id"] for m in other] != [m["message_id"] for m in messages_2020]
    # A state replayed alone brings the same messages as in the whole replay.
    alone = replay_messages(county_returns[county_returns["state_po"] == SMALL_STATE], 2020, seed=7)
    assert alone == [message for message in messages_2020 if message["state_po"] == SMALL_STATE]


@pytest.mark.parametrize("year", REPLAY_YEARS)
def test_every_replay_year_matches_the_schema(county_returns, year):
    validator = jsonschema.Draft202012Validator(message_schema(), format_checker=jsonschema.FormatChecker())
    messages = replay_messages(county_returns, year)
    for message in messages:
        validator.validate(message)
    assert {message["year"] for message in messages} == {year}


def test_the_schema_rejects_bad_messages(messages_2020):
    validator = jsonschema.Draft202012Validator(message_schema())
    good = messages_2020[0]
    bad = [
        {**good, "dem_votes": -1},
        {**good, "county_fips": "1001"},
        {**good, "status": "done"},
        {**good, "counted_share": 1.2},
        {**good, "status": "complete", "counted_share": 0.5},
        {**good, "extra": True},
        {key: value for key, value in good.items() if key != "message_id"},
    ]
    for message in bad:
        assert not validator.is_valid(message), message
    assert validator.is_valid(good)


def test_replay_rejects_a_year_without_returns(county_returns):
    with pytest.raises(ValueError, match="no row for 2024"):
        replay_messages(county_returns, 2024)


def test_results_settings():
    live = PipelineSettings.from_env({}).live
    assert (live.nats_url, live.results_stream, live.subject_prefix, live.live_bucket, live.call_probability) == (
        "nats://127.0.0.1:4222",
        "ELECTION_RESULTS",
        "results",
        "election_live",
        0.995,
    )
    assert live.results_subject(2020, "PA") == "results.2020.PA"
    with pytest.raises(SettingsError, match="ELECTION_NATS_URL"):
        PipelineSettings.from_env({"ELECTION_NATS_URL": "127.0.0.1:4222"})
    with pytest.raises(SettingsError, match="ELECTION_RESULTS_SUBJECT_PREFIX"):
        PipelineSettings.from_env({"ELECTION_RESULTS_SUBJECT_PREFIX": "results.>"})
    with pytest.raises(SettingsError, match="ELECTION_RESULTS_STREAM"):
        PipelineSettings.from_env({"ELECTION_RESULTS_STREAM": "election.results"})
    with pytest.raises(SettingsError, match="ELECTION_CALL_PROBABILITY"):
        PipelineSettings.from_env({"ELECTION_CALL_PROBABILITY": "0.4"})


async def _publish_and_read_back(messages: list[dict], settings: LiveSettings) -> dict:
    stream_name, prefix = settings.results_stream, settings.subject_prefix
    summary = await stream.replay_to_stream(messages, settings)
    # Publishing the same replay again stores nothing: every message id is already in the stream.
    again = await stream.replay_to_stream(messages, settings)
    client = await stream.connect(settings.nats_url)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream_name)
        subscription = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream_name)
        received = []
        while len(received) < len(messages):
            batch = await subscription.fetch(len(messages) - len(received), timeout=5)
            for message in batch:
                received.append(
                    (message.subject, message.headers.get("Nats-Msg-Id"), json.loads(message.data), message.metadata)
                )
                await message.ack()
        return {"summary": summary, "again": again, "info": info, "received": received}
    finally:
        try:
            await client.jetstream().delete_stream(stream_name)
        finally:
            await client.drain()


@pytest.mark.skipif(not _nats_answers(), reason=f"no NATS server answers on {NATS_HOST}:{NATS_PORT} (nats-server -js)")
def test_a_small_state_replays_to_jetstream(county_returns):
    messages = replay_messages(county_returns[county_returns["state_po"] == SMALL_STATE], 2016)
    token = uuid.uuid4().hex[:12]
    stream_name, prefix = f"TEST_RESULTS_{token}", f"test_{token}.results"
    settings = LiveSettings(
        nats_url=f"nats://{NATS_HOST}:{NATS_PORT}", results_stream=stream_name, subject_prefix=prefix
    )
    result = asyncio.run(_publish_and_read_back(messages, settings))

    assert result["summary"].published == len(messages) and result["summary"].duplicates == 0
    assert result["again"].published == len(messages) and result["again"].duplicates == len(messages)
    assert result["info"].state.messages == len(messages)
    assert [payload for _, _, payload, _ in result["received"]] == messages
    assert {subject for subject, _, _, _ in result["received"]} == {f"{prefix}.2016.{SMALL_STATE}"}
    assert [msg_id for _, msg_id, _, _ in result["received"]] == [m["message_id"] for m in messages]
    assert [metadata.sequence.stream for _, _, _, metadata in result["received"]] == list(range(1, len(messages) + 1))
    validator = jsonschema.Draft202012Validator(message_schema())
    for _, _, payload, _ in result["received"]:
        validator.validate(payload)


def test_an_unreachable_nats_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(stream.StreamUnavailable, match=f"cannot connect to NATS at nats://127.0.0.1:{port}"):
        asyncio.run(stream.connect(f"nats://127.0.0.1:{port}", timeout=1))
