"""The live updater against the machine's NATS JetStream: the bucket, dead letters, redelivery, kill -9 and restart,
and NATS unreachable at start. Each test uses its own stream, subjects and bucket and deletes them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from election_assets.core.live import NATIONAL_KEY, LiveSettings, NationalLive, StateLive, state_of_key
from election_assets.live import stream
from election_assets.live.prior import ElectionNightPrior
from election_assets.live.replay import load_county_returns, replay_messages
from election_assets.live.updater import LiveUpdater, connect_with_retries, reset_night
from election_assets_tests.live_fixtures import small_prior

YEAR = 2016
SMALL_STATES = ("DE", "RI", "HI", "VT")  # 3 + 5 + 4 + 14 counties


def _nats_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _nats_answers(), reason="no NATS server on 127.0.0.1:4222 (nats-server -js)")


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    frame = load_county_returns()
    return frame[frame["state_po"].isin(SMALL_STATES)]


@pytest.fixture(scope="module")
def prior(returns: pd.DataFrame) -> ElectionNightPrior:
    return small_prior(returns, YEAR)


@pytest.fixture(scope="module")
def messages(returns: pd.DataFrame) -> list[dict]:
    return replay_messages(returns, YEAR)


@pytest.fixture
def night_settings() -> Iterator[Callable[[], LiveSettings]]:
    """Makes settings naming a stream, subjects and bucket of their own; deletes them all afterwards."""
    made: list[LiveSettings] = []

    def make() -> LiveSettings:
        token = uuid.uuid4().hex[:10]
        made.append(
            LiveSettings(
                results_stream=f"TEST_LIVE_{token}",
                subject_prefix=f"test_{token}.results",
                live_bucket=f"test_live_{token}",
            )
        )
        return made[-1]

    yield make

    async def clean() -> None:
        for live in made:
            nc = await stream.connect(live.nats_url)
            try:
                await reset_night(nc.jetstream(), live)
            finally:
                await nc.drain()

    asyncio.run(clean())


@pytest.fixture
def settings(night_settings) -> LiveSettings:
    return night_settings()


async def _read_bucket(settings: LiveSettings) -> tuple[NationalLive, dict[str, StateLive]]:
    nc = await stream.connect(settings.nats_url)
    try:
        kv = await nc.jetstream().key_value(settings.live_bucket)
        national = NationalLive.from_json((await kv.get(NATIONAL_KEY)).value)
        states = {}
        for key in await kv.keys():
            if (state := state_of_key(key)) is not None:
                states[state] = StateLive.from_json((await kv.get(key)).value)
        return national, states
    finally:
        await nc.drain()


async def _publish_raw(settings: LiveSettings, items: list[tuple[str, bytes, str]]) -> None:
    """Publish (subject, payload, Nats-Msg-Id) as they are: a faulty feed."""
    nc = await stream.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        await stream.ensure_stream(js, settings)
        for subject, payload, msg_id in items:
            await js.publish(subject, payload, stream=settings.results_stream, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.drain()


def test_the_updater_applies_a_night_and_sets_bad_reports_aside(settings, prior, messages):
    subject = settings.results_subject(YEAR, "DE")
    first = messages[0]
    decreased = dict(first, message_id=f"{YEAR}-{first['county_fips']}-9", step=9, dem_votes=0, rep_votes=0,
                     total_votes=0)  # fmt: skip
    faults = [
        (subject, b"{oops", "bad-1"),
        (subject, json.dumps(dict(first, county_fips="99999", message_id=f"{YEAR}-99999-1")).encode(), "bad-2"),
        (subject, json.dumps(dict(first, dem_votes=-1, message_id=f"{YEAR}-00000-7")).encode(), "bad-3"),
        (subject, json.dumps(dict(first, year=2012, message_id=f"2012-{first['county_fips']}-1")).encode(), "bad-4"),
        (subject, json.dumps(decreased).encode(), "bad-5"),
        # The first report again under another Nats-Msg-Id: JetStream stores it, the updater must not apply it twice.
        (settings.results_subject(YEAR, first["state_po"]), json.dumps(first).encode(), "again-1"),
    ]

    async def night() -> LiveUpdater:
        nc = await connect_with_retries(settings, attempts=3)
        try:
            updater = LiveUpdater(settings, prior, batch=16)

            async def feed() -> None:
                await updater.following.wait()
                await stream.publish_messages(nc.jetstream(), messages, settings)
                await _publish_raw(settings, faults)

            def done(estimate) -> bool:
                return estimate.messages_applied + estimate.dead_lettered + estimate.duplicates >= len(messages) + 6

            feeding = asyncio.create_task(feed())
            await asyncio.wait_for(updater.run(nc, done=done), timeout=60)
            await feeding
            return updater
        finally:
            await nc.drain()

    updater = asyncio.run(night())
    national, states = asyncio.run(_read_bucket(settings))
    assert national.messages_applied == len(messages) and national.duplicates == 1 and national.dead_lettered == 5
    assert set(states) == set(SMALL_STATES) and all(
        state.counties_complete == state.counties for state in states.values()
    )
    for state, record in states.items():
        rows = messages_final(messages, state)
        assert record.counted_votes == rows["dem"] + rows["rep"]
        assert record.p_dem == (1.0 if rows["dem"] > rows["rep"] else 0.0)
        assert record.call is not None and record.call["winner"] == ("D" if rows["dem"] > rows["rep"] else "R")
    metrics = updater.metrics
    assert metrics.applied._value.get() == len(messages) and metrics.duplicates._value.get() == 1
    reasons = {reason: metrics.dead_lettered.labels(reason=reason)._value.get() for reason in (
        "malformed_json", "unknown_county", "invalid_message", "wrong_year", "count_decreased")}  # fmt: skip
    assert reasons == dict.fromkeys(reasons, 1.0)
    letters = asyncio.run(_read_subject(settings, settings.dead_letter_subject(YEAR)))
    assert sorted(letter["reason"] for letter in letters) == sorted(reasons)
    assert all(letter["detail"] and letter["data"] for letter in letters)


def messages_final(messages: list[dict], state: str) -> dict[str, int]:
    last = {m["county_fips"]: m for m in messages if m["state_po"] == state}
    return {"dem": sum(m["dem_votes"] for m in last.values()), "rep": sum(m["rep_votes"] for m in last.values())}


async def _read_subject(settings: LiveSettings, subject: str) -> list[dict]:
    nc = await stream.connect(settings.nats_url)
    try:
        subscription = await nc.jetstream().pull_subscribe(subject, stream=settings.results_stream)
        return [json.loads(message.data) for message in await subscription.fetch(100, timeout=2)]
    finally:
        await nc.drain()


def _start_updater(settings: LiveSettings, data_dir: Path, port: int) -> subprocess.Popen:
    env = os.environ | {
        "ELECTION_NATS_URL": settings.nats_url,
        "ELECTION_RESULTS_STREAM": settings.results_stream,
        "ELECTION_RESULTS_SUBJECT_PREFIX": settings.subject_prefix,
        "ELECTION_LIVE_BUCKET": settings.live_bucket,
        "ELECTION_DATA_DIR": str(data_dir),
        "ELECTION_LIVE_METRICS_PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "election_assets.live.updater", "--year", str(YEAR)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_applied(settings: LiveSettings, count: int, timeout: float = 60.0) -> NationalLive:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            national, _ = asyncio.run(_read_bucket(settings))
            if national.messages_applied >= count:
                return national
        except Exception:  # the bucket or its national key is not there yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"the updater did not apply {count} reports within {timeout} s")


def _night_with_a_kill(settings: LiveSettings, data_dir: Path, messages: list[dict], kill_after: int | None) -> dict:
    """Publish ``messages`` to an updater process; with ``kill_after``, kill -9 it once it has applied that many,
    publish the rest while it is down, and start it again. Returns the bucket's probabilities at the end."""
    updater = _start_updater(settings, data_dir, _free_port())
    try:
        cut = kill_after if kill_after is not None else len(messages)
        asyncio.run(stream.replay_to_stream(messages[:cut], settings, speed=2000))
        if kill_after is not None:
            _wait_applied(settings, kill_after)
            updater.send_signal(signal.SIGKILL)
            updater.wait(timeout=10)
            asyncio.run(stream.replay_to_stream(messages[cut:], settings))
            updater = _start_updater(settings, data_dir, _free_port())
        national = _wait_applied(settings, len(messages))
        _, states = asyncio.run(_read_bucket(settings))
        return {
            "national": (national.p_dem, national.dem_electoral_votes_median, national.counted_votes),
            "states": {state: (r.p_dem, r.expected_dem_share, r.counted_votes) for state, r in sorted(states.items())},
        }
    finally:
        updater.kill()
        updater.wait(timeout=10)


@pytest.mark.slow
def test_kill_9_and_restart_ends_where_an_uninterrupted_night_ends(night_settings, prior, messages, tmp_path):
    prior.write(tmp_path / "live" / f"prior_{YEAR}.json")
    # Two thirds of the night, so the probabilities at the end are not all settled.
    night = messages[: 2 * len(messages) // 3]
    uninterrupted = _night_with_a_kill(night_settings(), tmp_path, night, kill_after=None)
    restarted = _night_with_a_kill(night_settings(), tmp_path, night, kill_after=len(night) // 2)
    assert 0.0 < restarted["national"][0] < 1.0 or any(0.0 < s[0] < 1.0 for s in restarted["states"].values())
    assert restarted == uninterrupted


def test_nats_unreachable_at_start_is_retried_then_named(caplog):
    settings = LiveSettings(nats_url="nats://127.0.0.1:9")
    refused = pytest.raises(stream.StreamUnavailable, match="cannot connect to NATS at nats://127.0.0.1:9")
    with caplog.at_level(logging.WARNING, logger="election_assets.live.updater"), refused:
        asyncio.run(connect_with_retries(settings, attempts=2))
    assert any("retrying in 0.5 s" in record.getMessage() for record in caplog.records)
