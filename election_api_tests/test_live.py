"""Election night's routes (issue 16): ``/live/national``, ``/live/state/{state_po}`` and ``/live/stream``, read from
a real JetStream key-value bucket on the machine's NATS (a bucket of each test's own, deleted afterwards)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from litestar.testing import TestClient

from election_api.app import create_app
from election_api.live import LiveFeed
from election_api.settings import ApiSettings, SettingsError
from election_api_tests.conftest import VALID_ROW, LiveBucket, LiveNight, LiveServer, free_port, wait_for
from election_assets.core.live import LiveSettings, NationalLive, StateLive


@pytest.fixture
def live_settings(settings: ApiSettings, live_bucket: LiveBucket) -> ApiSettings:
    return replace(settings, live=live_bucket.settings())


@pytest.fixture
def live_client(live_settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(live_settings)) as client:
        yield client


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self) -> list[str | None]:
        return [record.__dict__.get("event") for record in self.records]


@pytest.fixture
def live_log() -> Iterator[_Records]:
    """The feed's log records (pytest's caplog misses them: an app's logging config replaces the root's handlers)."""
    logger = logging.getLogger("election_api.live")
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _feed(client: TestClient) -> LiveFeed:
    feed = client.app.api_state.live
    assert feed is not None
    return feed


def _assert_unavailable(response: httpx.Response, *words: str) -> dict:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert set(body) == {"status_code", "detail", "errors", "request_id"} and body["status_code"] == 503
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


def test_settings_read_the_shared_live_settings(tmp_path):
    settings = ApiSettings.from_env({"ELECTION_DATA_DIR": str(tmp_path)})
    assert settings.live == LiveSettings()
    custom = ApiSettings.from_env(
        {"ELECTION_DATA_DIR": str(tmp_path), "ELECTION_NATS_URL": "nats://nats:4222", "ELECTION_LIVE_BUCKET": "night"}
    )
    assert custom.live == LiveSettings.from_env(
        {"ELECTION_NATS_URL": "nats://nats:4222", "ELECTION_LIVE_BUCKET": "night"}
    )
    assert ApiSettings.from_env({"ELECTION_DATA_DIR": str(tmp_path), "ELECTION_API_LIVE": "false"}).live is None
    for variable, value in (
        ("ELECTION_API_LIVE", "sometimes"),
        ("ELECTION_LIVE_BUCKET", "a.b"),
        ("ELECTION_NATS_URL", "x"),
    ):
        with pytest.raises(SettingsError, match=variable):
            ApiSettings.from_env({"ELECTION_DATA_DIR": str(tmp_path), variable: value})


def test_no_live_routes_when_live_is_off(client):
    assert client.app.settings.live is None and client.app.api_state.live is None
    for path in ("/live", "/live/national", "/live/state/PA", "/live/stream", "/live/static/live.js"):
        assert client.get(path).status_code == 404, path
    assert not [path for path in client.get("/schema/openapi.json").json()["paths"] if path.startswith("/live")]


def test_before_any_data_every_route_answers_503(live_client, live_bucket):
    wait_for(lambda: _feed(live_client).synced)
    for path in ("/live/national", "/live/state/PA", "/live/stream"):
        body = _assert_unavailable(live_client.get(path), live_bucket.name, "empty")
        assert body["errors"] == [{"field": "live", "reason": "retry after 5 s"}]
    assert live_client.get("/live/state/XX").status_code == 404  # an unknown state is unknown, data or not
    page = live_client.get("/live")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('class="state"') == 51


def test_records_are_served_as_written(live_client, live_bucket):
    night = LiveNight(live_bucket)
    night.report({"PA": 0.62, "GA": 0.41, "DC": 0.9999}, called=["DC"])
    national = night.national()
    wait_for(lambda: live_client.get("/live/national").status_code == 200)
    response = live_client.get("/live/national")
    assert response.headers["content-type"] == "application/json" and response.headers["cache-control"] == "no-store"
    assert NationalLive.from_json(response.content) == national
    assert int(response.headers["x-live-revision"]) > 0
    pennsylvania = StateLive.from_json(live_client.get("/live/state/PA").content)
    assert (pennsylvania.state_po, pennsylvania.p_dem, pennsylvania.electoral_votes, pennsylvania.call) == (
        "PA",
        0.62,
        20,
        None,
    )
    assert StateLive.from_json(live_client.get("/live/state/pa").content) == pennsylvania  # any case
    dc = StateLive.from_json(live_client.get("/live/state/DC").content)
    assert dc.call is not None and dc.call["winner"] == "D" and dc.call["messages_applied"] == 30
    # A known state without a record yet is a 503 naming it; an unknown one a 404 in the project's error shape.
    _assert_unavailable(live_client.get("/live/state/OH"), "OH", "state.OH")
    for unknown in ("XX", "PR", "P", "national"):
        response = live_client.get(f"/live/state/{unknown}")
        assert response.status_code == 404, unknown
        body = response.json()
        assert body["errors"][0]["field"] == "state_po" and unknown in body["detail"], body


def test_updates_and_deletes_are_followed(live_client, live_bucket):
    night = LiveNight(live_bucket)
    night.report({"PA": 0.62})
    wait_for(lambda: live_client.get("/live/state/PA").status_code == 200)
    night.report({"PA": 0.31})
    wait_for(lambda: live_client.get("/live/state/PA").json()["p_dem"] == 0.31)
    live_bucket.delete("state.PA")
    _assert_unavailable(wait_for(lambda: (r := live_client.get("/live/state/PA")).status_code == 503 and r), "PA")
    assert live_client.get("/live/national").status_code == 200


def test_records_that_break_the_contract_are_ignored(live_client, live_bucket, live_log):
    night = LiveNight(live_bucket)
    live_bucket.put("state.OH", b"not json")
    live_bucket.put("state.TX", b'{"year": 2020}')  # fields missing
    live_bucket.put("state.XX", b"{}")  # not a state
    live_bucket.put("somethingelse", b"{}")
    night.report({"PA": 0.7})
    wait_for(lambda: live_client.get("/live/state/PA").status_code == 200)
    live_bucket.put("state.GA", live_client.get("/live/state/PA").content)  # PA's record under GA's key
    night.report({"NV": 0.5})
    wait_for(lambda: live_client.get("/live/state/NV").status_code == 200)
    for state_po in ("OH", "TX", "GA"):
        _assert_unavailable(live_client.get(f"/live/state/{state_po}"), state_po)
    events = live_log.events()
    assert events.count("live_bad_record") == 3 and events.count("live_unknown_key") == 2, events


def test_the_bucket_may_appear_after_the_api_started(settings, live_bucket):
    missing = live_bucket.settings(live_bucket=f"{live_bucket.name}_later")
    later = LiveBucket(live_bucket.nats_url)
    later.name = missing.live_bucket
    with TestClient(create_app(replace(settings, live=missing))) as client:
        _assert_unavailable(
            wait_for(
                lambda: (r := client.get("/live/national")).status_code == 503 and "does not exist" in r.text and r
            ),
            missing.live_bucket,
            "does not exist",
        )
        try:
            later.create()
            LiveNight(later).report({"PA": 0.55})
            response = wait_for(lambda: (r := client.get("/live/national")).status_code == 200 and r, timeout=15)
            assert response.json()["year"] == 2020
        finally:
            later.close()


def test_nats_down_at_start_leaves_the_rest_of_the_api_working(settings, champion, live_log):
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with TestClient(create_app(replace(settings, live=LiveSettings(nats_url=url)))) as client:
        assert time.monotonic() - started < 5  # the app does not wait for NATS
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=VALID_ROW).status_code == 200
        assert client.get("/live").status_code == 200  # the page itself says it waits for data
        wait_for(lambda: "cannot reach NATS" in client.get("/live/national").text)
        for path in ("/live/national", "/live/state/PA", "/live/stream"):
            _assert_unavailable(client.get(path), "cannot reach NATS", url, "ELECTION_NATS_URL")
        assert client.get("/live/state/XX").status_code == 404
    unavailable = [record for record in live_log.records if record.__dict__.get("event") == "live_unavailable"]
    assert len(unavailable) == 1 and url in unavailable[0].__dict__["reason"]  # logged once, not per retry


class _Proxy:
    """A TCP proxy to NATS whose connections the test can cut, and whose listening socket it can close and open
    again: NATS going away and coming back, without touching the machine's server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._server: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, destination):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone would not)
            self._server.close()
            self._server = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()


def test_losing_nats_answers_503_and_reconnecting_reads_the_bucket_again(settings, live_bucket):
    proxy = _Proxy(("127.0.0.1", 4222))
    proxy.start()
    night = LiveNight(live_bucket)
    night.report({"PA": 0.6})
    live = live_bucket.settings(nats_url=f"nats://127.0.0.1:{proxy.port}")
    try:
        with TestClient(create_app(replace(settings, live=live))) as client:
            wait_for(lambda: client.get("/live/state/PA").status_code == 200)
            proxy.stop()
            wait_for(lambda: client.get("/live/state/PA").status_code == 503)
            _assert_unavailable(client.get("/live/national"), "live data unavailable")
            night.report({"PA": 0.2, "OH": 0.3})  # written while the API cannot see NATS
            live_bucket.delete("state.PA")
            proxy.start()
            wait_for(lambda: client.get("/live/state/OH").status_code == 200, timeout=20)
            assert client.get("/live/state/PA").status_code == 503  # deleted meanwhile: the re-read dropped it
            assert _feed(client).connections == 2
    finally:
        proxy.stop()


def _events(lines: Iterator[str]) -> Iterator[dict]:
    """Server-Sent Events from a stream's lines: {event, data, id}; comments are skipped."""
    event: dict = {}
    for line in lines:
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                event["data"] = event["data"] + "\n" + value if "data" in event else value
            elif name in ("event", "id", "retry"):
                event[name] = value


def test_the_stream_sends_the_current_records_then_each_update(live_settings, live_bucket):
    night = LiveNight(live_bucket)
    night.report({"PA": 0.62, "GA": 0.41})
    with LiveServer(live_settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_for(lambda: http.get("/live/national").status_code == 200)
        with http.stream("GET", "/live/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response.iter_lines())
            first = [next(events) for _ in range(5)]
            assert [event.get("event") for event in first] == ["reset", "national", "state", "state", "status"]
            assert first[0]["retry"] == "2000"
            assert [json.loads(event["data"])["state_po"] for event in first[2:4]] == ["GA", "PA"]
            assert json.loads(first[4]["data"]) == {"available": True, "detail": None}
            assert NationalLive.from_json(first[1]["data"]) == night.national()
            # An update written after connecting arrives as the new record, with its bucket revision as its id.
            revision = live_bucket.put_record(replace(night.national(), p_dem=0.123))
            update = next(events)
            assert update["event"] == "national" and update["id"] == str(revision)
            assert json.loads(update["data"])["p_dem"] == 0.123
            night.report({"NV": 0.52})
            assert [(e["event"], json.loads(e["data"]).get("state_po")) for e in (next(events), next(events))] == [
                ("state", "NV"),
                ("national", None),
            ]
            live_bucket.delete("state.GA")
            deleted = next(events)
            assert deleted["event"] == "delete" and json.loads(deleted["data"]) == {"key": "state.GA", "state_po": "GA"}
        # The client is gone: its subscription too.
        feed = server.app.api_state.live
        wait_for(lambda: feed.subscribers == 0)
