"""Election night (issue 16): the live estimate, from the memory of ``LiveFeed`` (which watches the updater's
key-value bucket on NATS), and its page.

``GET /live/national`` and ``GET /live/state/{state_po}`` answer the bucket's latest record as it is stored;
``GET /live/stream`` is a Server-Sent Events stream of them; ``GET /live`` is the page that draws them. Every
``/live/*`` route answers 503 with Retry-After while there is nothing to serve (NATS down, no bucket, an empty
bucket).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.static_files import create_static_files_router

from election_api.errors import ApiError, FieldError
from election_api.live import LiveFeed, LiveRecord
from election_api.live_page import STATIC_DIR, STATIC_PATH, page_html, page_html_gzip
from election_api.openapi import live_error_responses
from election_api.settings import ApiSettings
from election_api.state import ApiState
from election_assets.core.live import NATIONAL_KEY, NationalLive, StateLive, state_key, state_of_key
from election_assets.core.states import STATE_PO

__all__ = ["LiveController", "live_routes"]

RETRY_AFTER_SECONDS = 5
# The event stream: a comment line this often keeps proxies from closing an idle stream; a client reconnects this
# many milliseconds after losing it (EventSource's ``retry``).
KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2_000
_NO_STORE = {"Cache-Control": "no-store"}
StatePo = Annotated[
    str, PathParameter(description="A state's postal code, such as PA (the 50 states and DC)", examples=None)
]


def _unavailable(detail: str) -> ApiError:
    return ApiError(
        503,
        detail,
        [FieldError("live", f"retry after {RETRY_AFTER_SECONDS} s")],
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _feed(api: ApiState) -> LiveFeed:
    """The feed when it has something to serve; a 503 saying why not otherwise."""
    feed = api.live
    assert feed is not None, "the live routes are registered only with a live feed"
    reason = feed.unavailable_reason()
    if reason is not None:
        raise _unavailable(reason)
    return feed


def _json(record: LiveRecord) -> Response[Any]:
    headers = {**_NO_STORE, "X-Live-Revision": str(record.revision)}
    return Response(record.json, media_type=MediaType.JSON, headers=headers)


def _record_event(record: LiveRecord) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=record.json.decode(), event=record.kind, id=record.revision)


def _status_event(feed: LiveFeed) -> ServerSentEventMessage:
    reason = feed.unavailable_reason() if not feed.synced else None
    return ServerSentEventMessage(data=json.dumps({"available": feed.synced, "detail": reason}), event="status")


def _delete_event(key: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=json.dumps({"key": key, "state_po": state_of_key(key)}), event="delete")


async def live_events(feed: LiveFeed) -> AsyncIterator[ServerSentEventMessage]:
    """The stream of one client: ``reset``, every current record, ``status``; then each change as it comes (the
    latest record of each changed key when the client is behind), a ``status`` when the feed loses or regains
    NATS, and after a reconnection to NATS ``reset`` and every record again."""
    with feed.subscribe() as subscriber:
        yield ServerSentEventMessage(data="{}", event="reset", retry=RECONNECT_MILLISECONDS)
        for record in feed.records():
            yield _record_event(record)
        yield _status_event(feed)
        while True:
            try:
                await asyncio.wait_for(subscriber.wake.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keepalive")
                continue
            reset, status, keys = subscriber.take()
            if reset:
                yield ServerSentEventMessage(data="{}", event="reset")
                for record in feed.records():
                    yield _record_event(record)
            else:
                for key in keys:
                    record = feed.get(key)
                    yield _record_event(record) if record is not None else _delete_event(key)
            if status or reset:
                yield _status_event(feed)


_STREAM_DESCRIPTION = (
    "Server-Sent Events, one per update of the key-value bucket. The stream opens with `reset` (forget what you "
    "hold), one event per current record (`national`, then `state` in postal-code order) and `status` "
    '(`{"available": true, "detail": null}`), so a new client has the whole picture. Then: `national` or `state` '
    "with the new record each time the updater writes one (a client that falls behind gets the latest record of "
    'each changed key), `delete` (`{"key", "state_po"}`) when a key is deleted, `status` with `available: false` '
    "and the reason when the API loses NATS, and `reset` plus every record when it is back. A record event's `id` "
    "is its bucket revision. A comment line every 15 s keeps the stream open. 503 (with Retry-After) when there "
    "is nothing to serve yet."
)


class LiveController(Controller):
    """Registered when ``ApiSettings.live`` is set (ELECTION_API_LIVE, on by default)."""

    tags = ["election night"]

    @get(
        "/live",
        sync_to_thread=False,
        media_type=MediaType.HTML,
        summary="The election-night page: a live map of the states and the electoral-vote count",
        description="HTML; its script follows /live/stream. Script and style sheet are served under /live/static.",
    )
    def page(self, request: Request, api: NamedDependency[ApiState]) -> Response[str]:
        call_probability = api.settings.live.call_probability if api.settings.live else 0.995
        headers = {"Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = page_html_gzip(call_probability)
            headers["Content-Encoding"] = "gzip"
        else:
            body = page_html(call_probability)
        return Response(body, media_type=MediaType.HTML, headers=headers)

    @get(
        "/live/national",
        sync_to_thread=False,
        summary="The presidency, live: the probability of 270 or more electoral votes and the electoral votes",
        description="The bucket's `national` record as the live updater wrote it; header X-Live-Revision.",
        responses=live_error_responses(503),
    )
    def national(self, api: NamedDependency[ApiState]) -> Response[NationalLive]:
        feed = _feed(api)
        record = feed.national()
        if record is None:
            raise _unavailable(
                f"no live national estimate yet (key {NATIONAL_KEY} of bucket {feed.settings.live_bucket})"
            )
        return _json(record)

    @get(
        "/live/state/{state_po:str}",
        sync_to_thread=False,
        summary="One state, live: the probability the Democrat carries it, the count so far and the call",
        description=(
            "The bucket's `state.<state_po>` record as the live updater wrote it (`call` is null until the state "
            "is called); header X-Live-Revision. `state_po` is a postal code such as PA (DC included)."
        ),
        responses=live_error_responses(404, 503),
    )
    def state(self, state_po: StatePo, api: NamedDependency[ApiState]) -> Response[StateLive]:
        code = state_po.upper()
        if code not in STATE_PO:
            raise ApiError(
                404,
                f"unknown state {state_po!r}",
                [FieldError("state_po", "not the postal code of one of the 50 states or DC (for example PA)")],
            )
        feed = _feed(api)
        record = feed.state(code)
        if record is None:
            raise _unavailable(
                f"no live estimate for {code} yet (key {state_key(code)} of bucket {feed.settings.live_bucket})"
            )
        return _json(record)

    @get(
        "/live/stream",
        sync_to_thread=False,
        media_type="text/event-stream",
        summary="The live records as Server-Sent Events, the current ones first",
        description=_STREAM_DESCRIPTION,
        responses={
            200: ResponseSpec(data_container=str, media_type="text/event-stream", description="An event stream"),
            **live_error_responses(503),
        },
    )
    def stream(self, api: NamedDependency[ApiState]) -> ServerSentEvent:
        feed = _feed(api)
        # X-Accel-Buffering: a reverse proxy (nginx) must pass the events on as they come.
        return ServerSentEvent(live_events(feed), headers={**_NO_STORE, "X-Accel-Buffering": "no"})


def live_routes(settings: ApiSettings) -> list[Any]:
    """The ``/live`` routes, the page's script and style sheet included, when live is on (``settings.live``)."""
    if settings.live is None:
        return []
    static = create_static_files_router(
        path=STATIC_PATH, directories=[STATIC_DIR], include_in_schema=False, name="live_static"
    )
    return [LiveController, static]
