"""Election night (issue 16): the live estimate the API serves, read from the JetStream key-value bucket the live
updater writes (the contract: ``election_assets.core.live``).

``LiveFeed`` watches the bucket in a background task that the app's lifespan starts and stops, and keeps the latest
record of every key in memory: the routes answer from memory, never from NATS. NATS being down, or the bucket not
existing yet, never stops the API: the task connects again with a backoff (``min_backoff`` doubling up to
``max_backoff``) and logs each new problem once, and meanwhile ``unavailable_reason`` says why there is nothing to
serve. Every (re)connection reads the bucket's current records afresh and replaces the ones in memory at once.

Clients of the event stream subscribe (``subscribe``): each gets the keys that changed since it last read, so a
slow client receives the latest record of each key, not a backlog of every intermediate one, and never holds more
than one pending entry per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from election_assets.core.live import NATIONAL_KEY, LiveSettings, NationalLive, StateLive, state_key, state_of_key
from election_assets.core.states import STATE_PO

__all__ = ["LiveFeed", "LiveRecord", "Subscriber"]

log = logging.getLogger("election_api.live")

# An idle watch checks this often that its connection is up and the bucket is still the one it watches (an updater
# that deletes and re-creates the bucket would otherwise leave the watch silently attached to nothing).
_IDLE_CHECK_SECONDS = 5.0
_POLL_SECONDS = 0.5  # how long one wait for an update lasts before the idle bookkeeping runs
_CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class LiveRecord:
    """One key's latest record: its decoded form, its JSON (as served) and the bucket revision that wrote it."""

    key: str
    revision: int
    record: NationalLive | StateLive
    json: bytes

    @property
    def kind(self) -> str:
        return "national" if self.key == NATIONAL_KEY else "state"


def decode_entry(key: str, revision: int, value: bytes) -> LiveRecord | None:
    """The record of a bucket entry, or None (logged) for a key outside the contract or a value that breaks it."""
    state_po = state_of_key(key)
    kind: type[NationalLive] | type[StateLive]
    if key == NATIONAL_KEY:
        kind = NationalLive
    elif state_po in STATE_PO:
        kind = StateLive
    else:
        log.warning("live bucket: ignoring an unknown key", extra={"event": "live_unknown_key", "key": key})
        return None
    try:
        record = kind.from_json(value)
        if isinstance(record, StateLive) and record.state_po != state_po:
            raise ValueError(f"state_po {record.state_po!r} under key {key!r}")
    except (ValueError, TypeError, KeyError) as error:  # JSON errors are ValueErrors; a missing field a TypeError
        log.warning(
            "live bucket: ignoring a record that breaks the contract",
            extra={"event": "live_bad_record", "key": key, "revision": revision, "error": str(error)[:200]},
        )
        return None
    return LiveRecord(key, revision, record, record.to_json())


@dataclass(eq=False)
class Subscriber:
    """One event-stream client: the keys changed since it last read, and whether it must start over (``reset``:
    the feed re-read the whole bucket) or hear the feed's availability again (``status``)."""

    changed: dict[str, None] = field(default_factory=dict)  # insertion-ordered set of keys
    reset: bool = False
    status: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> tuple[bool, bool, list[str]]:
        """What happened since the last call: (reset, status, changed keys), and clear it."""
        taken = (self.reset, self.status, list(self.changed))
        self.reset = self.status = False
        self.changed.clear()
        self.wake.clear()
        return taken


class _Unavailable(Exception):
    """Why the feed has nothing current to serve (a message for the 503 answers and the log)."""


class LiveFeed:
    def __init__(self, settings: LiveSettings, *, min_backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self.settings = settings
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._records: dict[str, LiveRecord] = {}
        self._synced = False  # connected, and the bucket's current records are in memory
        self._problem: str | None = f"connecting to NATS at {settings.nats_url}"
        self._subscribers: set[Subscriber] = set()
        self.connections = 0  # successful syncs so far (for tests and the log)

    # --- What the routes read ------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced

    def unavailable_reason(self) -> str | None:
        """None when there is something to serve, else why not (no connection, no bucket, an empty bucket)."""
        if not self._synced:
            return f"live data unavailable: {self._problem}"
        if not self._records:
            return (
                f"no live data yet: the key-value bucket {self.settings.live_bucket} is empty "
                "(the live updater writes it once results come in)"
            )
        return None

    def national(self) -> LiveRecord | None:
        return self._records.get(NATIONAL_KEY)

    def state(self, state_po: str) -> LiveRecord | None:
        return self._records.get(state_key(state_po))

    def get(self, key: str) -> LiveRecord | None:
        return self._records.get(key)

    def records(self) -> list[LiveRecord]:
        """Every current record: the national one first, then the states by postal code."""
        return sorted(self._records.values(), key=lambda item: (item.key != NATIONAL_KEY, item.key))

    # --- Event-stream clients ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _notify(self, *, key: str | None = None, reset: bool = False, status: bool = False) -> None:
        for subscriber in self._subscribers:
            if key is not None:
                subscriber.changed[key] = None
            subscriber.reset |= reset
            subscriber.status |= status
            subscriber.wake.set()

    # --- The watch -----------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """The app's lifespan: the watch runs in the background, so NATS being down delays nothing."""
        task = asyncio.create_task(self.run(), name="election-live-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Watch the bucket forever: connect, read its records, follow its updates; on any failure, wait and
        start over (each new problem is logged once)."""
        delay = self.min_backoff
        logged: str | None = None
        while True:
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except _Unavailable as problem:
                self._problem = str(problem)
            except Exception as error:  # nats-py raises many types (NoServersError, OSError, timeouts, API errors)
                self._problem = (
                    f"cannot reach NATS at {self.settings.nats_url} ({type(error).__name__}: {error}); "
                    "start it or set ELECTION_NATS_URL"
                )
            if self._synced:  # the watch had worked: start again quickly
                delay = self.min_backoff
            self._set_synced(False)
            if self._problem != logged:
                log.warning(
                    "live data unavailable, retrying",
                    extra={"event": "live_unavailable", "reason": self._problem, "retry_seconds": round(delay, 2)},
                )
                logged = self._problem
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not cryptography
            delay = min(delay * 2, self.max_backoff)

    def _set_synced(self, synced: bool) -> None:
        if synced != self._synced:
            self._synced = synced
            self._notify(status=True)

    async def _watch(self) -> None:
        import nats
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.errors import BucketNotFoundError, NotFoundError

        settings = self.settings
        bucket = settings.live_bucket

        async def quiet(_error: Exception) -> None:
            # nats-py's default error callback logs a traceback per failed attempt; ``run`` logs each problem once.
            return None

        client = await asyncio.wait_for(
            nats.connect(
                settings.nats_url,
                name="election-api",
                connect_timeout=_CONNECT_TIMEOUT_SECONDS,
                allow_reconnect=False,  # a lost connection ends this watch; ``run`` connects again and re-reads
                max_reconnect_attempts=1,  # one attempt at connecting (0 would mean no limit)
                reconnect_time_wait=0.1,
                error_cb=quiet,
                ping_interval=10,
                max_outstanding_pings=2,
            ),
            timeout=4 * _CONNECT_TIMEOUT_SECONDS,
        )
        try:
            js = client.jetstream()
            try:
                kv = await js.key_value(bucket)
            except BucketNotFoundError:
                raise _Unavailable(
                    f"the key-value bucket {bucket} does not exist on NATS at {settings.nats_url} yet (the live "
                    "updater creates it; ELECTION_LIVE_BUCKET names it)"
                ) from None
            stream = f"KV_{bucket}"
            created = (await js.stream_info(stream)).created
            watcher = await kv.watchall()
            try:
                initial: dict[str, LiveRecord] = {}
                loop = asyncio.get_running_loop()
                idle_since = loop.time()
                while True:
                    try:
                        entry = await watcher.updates(timeout=_POLL_SECONDS)
                    except NatsTimeout:
                        if not client.is_connected:
                            raise _Unavailable(f"lost the connection to NATS at {settings.nats_url}") from None
                        if loop.time() - idle_since >= _IDLE_CHECK_SECONDS:
                            idle_since = loop.time()
                            try:
                                info = await js.stream_info(stream)
                            except NotFoundError:
                                raise _Unavailable(f"the key-value bucket {bucket} was deleted") from None
                            if info.created != created:
                                raise _Unavailable(f"the key-value bucket {bucket} was re-created") from None
                        continue
                    idle_since = loop.time()
                    if entry is None:  # the watch's marker: every record the bucket held is delivered
                        if not self._synced:
                            self._records = initial
                            self.connections += 1
                            log.info(
                                "live data connected",
                                extra={
                                    "event": "live_connected",
                                    "nats_url": settings.nats_url,
                                    "bucket": bucket,
                                    "records": len(initial),
                                },
                            )
                            self._notify(reset=True)
                            self._set_synced(True)
                        continue
                    self._apply(initial if not self._synced else self._records, entry)
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def _apply(self, records: dict[str, LiveRecord], entry) -> None:
        key, revision = entry.key, entry.revision
        current = records.get(key)
        if current is not None and current.revision >= revision:
            return  # a redelivery
        if entry.operation in ("DEL", "PURGE"):
            if records.pop(key, None) is not None and records is self._records:
                self._notify(key=key)
            return
        record = decode_entry(key, revision, entry.value)
        if record is None:
            return
        records[key] = record
        if records is self._records:
            self._notify(key=key)
