"""The live updater: a durable JetStream consumer of county results that keeps the election-night estimate
(``estimate.LiveEstimate``) and writes it to the key-value bucket the API reads (``core.live``).

- **Start.** Connects with retries and backoff (a clear log line per failed attempt), creates the results stream and
  the bucket if missing, then rebuilds its counts from every result of the year already in the stream (the
  estimate depends only on the latest report of each county, so a restart, even after ``kill -9``, ends where an
  uninterrupted run ends) and restores the calls already in the bucket (a call stays made).
- **Consume.** Pulls batches from the durable consumer ``live-updater-<year>``; each message is parsed, checked and
  applied once (a redelivery is acknowledged and skipped; a bad message goes to the dead-letter subject with its
  reason and is acknowledged, never crashing the loop). After each batch the estimate is recomputed once, the
  changed records are written to the bucket, the batch's update is published on the updates subject, and only then
  are the messages acknowledged: a crash before that redelivers them.
- **Measure.** Prometheus metrics (``metrics.LiveMetrics``): applied, duplicates, dead letters by reason, consumer
  lag, and the latency from a report's arrival in JetStream to the bucket holding the estimate that includes it.

``python -m election_assets.live.updater`` (``make live``) follows ``ELECTION_LIVE_YEAR`` (2024 by default) until
stopped; ``make live-demo`` runs it against a replay (``demo.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig
from nats.js.errors import BucketNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from election_assets.core.env import env_int
from election_assets.core.live import NATIONAL_KEY, LiveSettings, StateCall, state_key, state_of_key
from election_assets.core.paths import StorePaths
from election_assets.live import stream
from election_assets.live.estimate import DeadLetter, LiveEstimate, parse_message
from election_assets.live.metrics import LiveMetrics
from election_assets.live.prior import ElectionNightPrior, PriorError

log = logging.getLogger("election_assets.live.updater")

# Messages pulled at once at most (fewer when fewer are waiting): the estimate is recomputed once per batch, so a
# smaller batch records calls closer to the report that made them, a larger one keeps up with a faster stream.
DEFAULT_BATCH = 200
_FETCH_WAIT_SECONDS = 0.25
_LAG_POLL_SECONDS = 1.0
_ACK_WAIT_SECONDS = 30.0
_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class NightLog:
    """What a run saw, for the replay's summary: each estimate's counted votes and national probability."""

    national: list[tuple[int, float]] = field(default_factory=list)
    first_applied: float | None = None
    last_applied: float | None = None


def consumer_name(year: int) -> str:
    return f"live-updater-{year}"


async def connect_with_retries(settings: LiveSettings, attempts: int | None = None) -> Client:
    """Connect to NATS, retrying with backoff; ``attempts`` None retries for ever (the service)."""
    attempt = 0
    while True:
        try:
            return await stream.connect(settings.nats_url)
        except stream.StreamUnavailable as error:
            attempt += 1
            if attempts is not None and attempt >= attempts:
                raise
            wait = _BACKOFF_SECONDS[min(attempt - 1, len(_BACKOFF_SECONDS) - 1)]
            log.warning("attempt %d: %s; retrying in %.1f s", attempt, error, wait)
            await asyncio.sleep(wait)


async def live_bucket(js: JetStreamContext, settings: LiveSettings) -> KeyValue:
    try:
        return await js.key_value(settings.live_bucket)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=settings.live_bucket, history=1))


async def reset_night(js: JetStreamContext, settings: LiveSettings) -> None:
    """Start a replayed night from nothing: delete the results stream (its messages, consumers and the record of
    message ids it has seen, without which a replay published again within the duplicate window would be dropped)
    and the live bucket. ``make live-demo`` does this; the service never does."""
    for delete, name in ((js.delete_stream, settings.results_stream), (js.delete_key_value, settings.live_bucket)):
        with contextlib.suppress(BucketNotFoundError, NotFoundError):
            await delete(name)


class LiveUpdater:
    def __init__(
        self,
        settings: LiveSettings,
        prior: ElectionNightPrior,
        metrics: LiveMetrics | None = None,
        night: NightLog | None = None,
        batch: int = DEFAULT_BATCH,
    ):
        self.settings = settings
        self.year = prior.year
        self.estimate = LiveEstimate(prior, call_probability=settings.call_probability)
        self.metrics = metrics or LiveMetrics()
        self.night = night or NightLog()
        self._written: dict[str, dict[str, Any]] = {}
        self._last_sequence = 0
        self.batch = batch
        self.following = asyncio.Event()  # set once the durable consumer exists: reports published now are seen

    @property
    def last_sequence(self) -> int:
        """The results stream's sequence of the last message the estimate includes."""
        return self._last_sequence

    # -- start ---------------------------------------------------------------------------------------------------

    async def _restore_calls(self, kv: KeyValue) -> None:
        try:
            keys = await kv.keys()
        except (NoKeysError, NotFoundError):  # an empty bucket
            return
        for key in keys:
            state = state_of_key(key)
            if state is None:
                continue
            record = json.loads((await kv.get(key)).value)
            if record.get("year") == self.year and record.get("call"):
                self.estimate.calls[state] = StateCall(**record["call"])

    async def _rebuild(self, js: JetStreamContext) -> int:
        """Apply every result of the year already in the stream (no dead letters published again); returns the
        last stream sequence applied."""
        subscription = await js.pull_subscribe(
            self.settings.results_filter(self.year),
            stream=self.settings.results_stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=60),
        )
        rebuilt = 0
        try:
            info = await subscription.consumer_info()
            remaining = info.num_pending
            while remaining > 0:
                for message in await subscription.fetch(min(remaining, self.batch), timeout=5):
                    remaining -= 1
                    self._last_sequence = max(self._last_sequence, message.metadata.sequence.stream)
                    try:
                        self.estimate.apply(parse_message(message.data))
                        rebuilt += 1
                    except DeadLetter:
                        self.estimate.dead_lettered += 1
        finally:
            await subscription.unsubscribe()
        if rebuilt:
            log.info("rebuilt %d county reports of %d from the stream", rebuilt, self.year)
        return self._last_sequence

    # -- consume -------------------------------------------------------------------------------------------------

    async def _dead_letter(self, js: JetStreamContext, message: Any, error: DeadLetter) -> None:
        self.estimate.dead_lettered += 1
        self.metrics.dead_lettered.labels(reason=error.reason).inc()
        log.warning("dead letter (%s) at stream sequence %d: %s", error.reason, message.metadata.sequence.stream,
                    error.detail)  # fmt: skip
        letter = {
            "reason": error.reason,
            "detail": error.detail,
            "subject": message.subject,
            "stream_sequence": message.metadata.sequence.stream,
            "data": message.data.decode("utf-8", errors="replace"),
        }
        await js.publish(self.settings.dead_letter_subject(self.year), json.dumps(letter).encode())

    async def _publish(self, nc: Client, kv: KeyValue) -> None:
        national, states = self.estimate.snapshot(self._last_sequence)
        changed = []
        for record in states:
            comparable = {**record.__dict__, "updated_at": None}
            previous = self._written.get(record.state_po)
            if previous is None or _differs(previous, comparable):
                self._written[record.state_po] = comparable
                changed.append(record)
        await asyncio.gather(
            *(kv.put(state_key(record.state_po), record.to_json()) for record in changed),
            kv.put(NATIONAL_KEY, national.to_json()),
        )
        update = {"national": national.__dict__, "states": [record.__dict__ for record in changed]}
        await nc.publish(self.settings.updates_subject(self.year), json.dumps(update).encode())
        self.night.national.append((national.counted_votes, national.p_dem))
        self.metrics.states_called.set(national.states_called)
        self.metrics.national_p_dem.set(national.p_dem)
        self.metrics.last_update.set(time.time())

    async def _watch_lag(self, subscription: Any) -> None:
        while True:
            try:
                info = await subscription.consumer_info()
                self.metrics.consumer_lag.set(info.num_pending)
            except Exception as error:  # a lag reading missed is not worth stopping for
                log.debug("consumer lag not read: %s", error)
            await asyncio.sleep(_LAG_POLL_SECONDS)

    async def run(
        self,
        nc: Client,
        *,
        stop: asyncio.Event | None = None,
        done: Callable[[LiveEstimate], bool] | None = None,
    ) -> None:
        """Consume until ``stop`` is set or ``done(estimate)`` holds after a batch."""
        js = nc.jetstream()
        await stream.ensure_stream(js, self.settings)
        kv = await live_bucket(js, self.settings)
        await self._restore_calls(kv)
        rebuilt_through = await self._rebuild(js)
        await self._publish(nc, kv)
        subscription = await js.pull_subscribe(
            self.settings.results_filter(self.year),
            durable=consumer_name(self.year),
            stream=self.settings.results_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, ack_wait=_ACK_WAIT_SECONDS, max_ack_pending=20 * self.batch
            ),
        )
        lag = asyncio.create_task(self._watch_lag(subscription))
        self.following.set()
        log.info("following %s on %s", self.settings.results_filter(self.year), self.settings.nats_url)
        try:
            while not (stop is not None and stop.is_set()) and not (done is not None and done(self.estimate)):
                try:
                    batch = await subscription.fetch(self.batch, timeout=_FETCH_WAIT_SECONDS)
                except TimeoutError:
                    continue
                await self._apply_batch(js, nc, kv, batch, rebuilt_through)
        finally:
            lag.cancel()
            # Without this, draining the connection waits nats-py's 30 s for the pull subscription's last fetch.
            await subscription.unsubscribe()

    async def _apply_batch(self, js: JetStreamContext, nc: Client, kv: KeyValue, batch: list, rebuilt_through: int):
        applied = []
        counted = False  # a message of this batch moved a counter of the national record (applied or not)
        for message in batch:
            sequence = message.metadata.sequence.stream
            if sequence <= rebuilt_through:
                continue  # applied while rebuilding
            counted = True
            self._last_sequence = max(self._last_sequence, sequence)
            try:
                if self.estimate.apply(parse_message(message.data)):
                    applied.append(message)
                else:
                    self.metrics.duplicates.inc()
            except DeadLetter as error:
                await self._dead_letter(js, message, error)
        if counted:
            # Also after a batch of only duplicates or dead letters: the national record's counters must not lag.
            await self._publish(nc, kv)
        if applied:
            now = time.time()
            self.night.first_applied = self.night.first_applied or now
            self.night.last_applied = now
            self.metrics.applied.inc(len(applied))
            for message in applied:
                self.metrics.update_latency.observe(max(now - message.metadata.timestamp.timestamp(), 0.0))
        await asyncio.gather(*(message.ack() for message in batch))


def _differs(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a state's record changed enough to write (a probability moving by less than 1e-6 does not)."""
    return any(
        abs(current[key] - previous[key]) > 1e-6 if isinstance(current[key], float) else current[key] != previous[key]
        for key in current
    )


# -- the service -------------------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m election_assets.live.updater",
        description="Follow an election night's county results on NATS JetStream and keep the live estimate.",
    )
    parser.add_argument("--year", type=int, help="the election to follow (default ELECTION_LIVE_YEAR or 2024)")
    return parser.parse_args(argv)


async def _serve(settings: LiveSettings, prior: ElectionNightPrior, metrics: LiveMetrics) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    nc = await connect_with_retries(settings)
    updater = LiveUpdater(settings, prior, metrics)
    try:
        await updater.run(nc, stop=stop)
    finally:
        await nc.drain()
    log.info("stopped after %d county reports of %d", updater.estimate.messages_applied, prior.year)


def main(argv: list[str] | None = None) -> int:
    from prometheus_client import start_http_server

    from election_assets.core.env import SettingsError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parse_args(argv)
    try:
        settings = LiveSettings.from_env()
        year = args.year or env_int(os.environ, "ELECTION_LIVE_YEAR", 2024, 2000, 2100)
        port = env_int(os.environ, "ELECTION_LIVE_METRICS_PORT", 9108, 1, 65535)
        prior = ElectionNightPrior.read(StorePaths.from_env().live_prior(year), year)
    except (SettingsError, PriorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metrics = LiveMetrics()
    start_http_server(port, registry=metrics.registry)
    log.info("prior of %d from %s (trained through %d); metrics on :%d/metrics at %s", year, prior.manifest.source,
             prior.manifest.trained_through, port, datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
    asyncio.run(_serve(settings, prior, metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
