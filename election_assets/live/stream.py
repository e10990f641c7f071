"""Publishing county result messages to the NATS JetStream results stream (``nats-py``).

The stream (``ELECTION_RESULTS`` by default) holds the subjects ``<prefix>.>``; a message goes to
``<prefix>.<year>.<state_po>`` with its ``message_id`` as the ``Nats-Msg-Id`` header, so JetStream stores a message
published twice within the stream's duplicate window (``DUPLICATE_WINDOW_SECONDS``) once and answers the second
publish with ``duplicate``. JetStream stamps each stored message with the time it received it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from election_assets.core.live import LiveSettings

__all__ = [
    "DUPLICATE_WINDOW_SECONDS",
    "PublishSummary",
    "StreamUnavailable",
    "connect",
    "ensure_stream",
    "publish_messages",
    "replay_to_stream",
]

# A replay published again within this window is stored once (JetStream's default window is two minutes).
DUPLICATE_WINDOW_SECONDS = 3600.0
_ACK_TIMEOUT_SECONDS = 30.0


class StreamUnavailable(RuntimeError):
    """NATS cannot be reached, or the stream exists with subjects that do not hold the results."""


@dataclass(frozen=True)
class PublishSummary:
    stream: str
    published: int
    duplicates: int
    seconds: float
    first_sequence: int | None
    last_sequence: int | None
    sequences: tuple[int, ...] = ()  # each message's stream sequence, in publish order (a duplicate's original one)

    @property
    def per_second(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else float("inf")

    def describe(self) -> str:
        stored = self.published - self.duplicates
        where = f", stream sequences {self.first_sequence}..{self.last_sequence}" if stored else ""
        return (
            f"Published {self.published:,} messages in {self.seconds:.1f} s ({self.per_second:,.0f} messages/s) to "
            f"stream {self.stream}: {stored:,} stored{where}; {self.duplicates:,} duplicates of messages already in "
            f"the stream (same Nats-Msg-Id within {DUPLICATE_WINDOW_SECONDS / 60:.0f} minutes) not stored again."
        )


async def connect(url: str, timeout: float = 2.0) -> Client:
    """A connection to NATS, or StreamUnavailable saying which URL did not answer."""

    async def quiet(error: Exception) -> None:
        # nats-py's default error callback logs a traceback per failed attempt; the error raised below says it once.
        return None

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=quiet,
            ),
            timeout=4 * timeout,
        )
    except Exception as error:  # nats-py raises several types (NoServersError, OSError, timeouts)
        raise StreamUnavailable(
            f"cannot connect to NATS at {url} ({type(error).__name__}: {error}); start it with "
            "`nats-server -js` or set ELECTION_NATS_URL"
        ) from error


async def ensure_stream(js: JetStreamContext, settings: LiveSettings) -> None:
    """Create the results stream on ``<subject_prefix>.>`` unless it exists; check an existing one holds them."""
    name = settings.results_stream
    subjects = [f"{settings.subject_prefix}.>"]
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS))
        return
    if subjects[0] not in (info.config.subjects or []):
        raise StreamUnavailable(
            f"the JetStream stream {name} exists with subjects {info.config.subjects}, not {subjects[0]}; "
            "set ELECTION_RESULTS_STREAM or ELECTION_RESULTS_SUBJECT_PREFIX to match, or delete the stream"
        )


async def publish_messages(
    js: JetStreamContext,
    messages: Sequence[dict[str, Any]],
    settings: LiveSettings,
    *,
    speed: float = 0.0,
    progress: Callable[[str], None] | None = None,
    sent_at: list[float] | None = None,
) -> PublishSummary:
    """Publish ``messages`` in order at ``speed`` messages per second (0: as fast as possible), then await the acks.

    Publishes are asynchronous (acknowledged in the background, at most nats-py's pending limit in flight) but leave
    the client in call order, so each subject's messages are stored in the order given. ``sent_at``, when given,
    receives each message's ``time.perf_counter()`` just before its publish (the live benchmark's latencies).
    """
    start = time.perf_counter()
    last_report = start
    acks: list[asyncio.Future] = []
    for index, message in enumerate(messages):
        if speed > 0:
            delay = start + index / speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        payload = json.dumps(message, separators=(",", ":")).encode()
        if sent_at is not None:
            sent_at.append(time.perf_counter())
        acks.append(
            await js.publish_async(
                settings.results_subject(message["year"], message["state_po"]),
                payload,
                stream=settings.results_stream,
                headers={"Nats-Msg-Id": message["message_id"]},
            )
        )
        now = time.perf_counter()
        if progress is not None and now - last_report >= 1.0:
            last_report = now
            progress(f"{index + 1:,}/{len(messages):,} messages, {(index + 1) / (now - start):,.0f}/s")
    results = await asyncio.wait_for(asyncio.gather(*acks), timeout=_ACK_TIMEOUT_SECONDS)
    seconds = time.perf_counter() - start
    stored = [ack.seq for ack in results if not ack.duplicate]
    return PublishSummary(
        stream=settings.results_stream,
        published=len(results),
        duplicates=sum(1 for ack in results if ack.duplicate),
        seconds=seconds,
        first_sequence=min(stored, default=None),
        last_sequence=max(stored, default=None),
        sequences=tuple(ack.seq for ack in results),
    )


async def replay_to_stream(
    messages: Sequence[dict[str, Any]],
    settings: LiveSettings,
    *,
    speed: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> PublishSummary:
    """Connect, make sure the stream exists, publish ``messages`` and close the connection."""
    client = await connect(settings.nats_url)
    try:
        js = client.jetstream()
        await ensure_stream(js, settings)
        return await publish_messages(js, messages, settings, speed=speed, progress=progress)
    finally:
        await client.drain()
