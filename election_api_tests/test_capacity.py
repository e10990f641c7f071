"""The bounds that keep the server's memory under the pod's limit: the rows an explained batch may have, and how
many large batches are read, scored and encoded at once (see election_api/capacity.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import httpx

from election_api.capacity import LARGE_BATCH_BYTES
from election_api_tests.conftest import VALID_ROW, LiveServer, make_client


def test_an_explained_batch_above_the_explain_limit_is_a_413_naming_it(settings, champion):
    with make_client(settings, max_explain_rows=3) as client:
        rows = {"rows": [VALID_ROW] * 4}
        response = client.post("/predict/batch?explain=true", json=rows)
        assert response.status_code == 413, response.text
        errors = {error["field"]: error["reason"] for error in response.json()["errors"]}
        assert set(errors) == {"$.rows", "explain"}
        assert "4 rows exceed the limit of 3 rows for explain=true (ELECTION_API_MAX_EXPLAIN_ROWS)" in errors["$.rows"]
        # The same rows without explanations, and as many rows as the limit with them, are answered.
        assert client.post("/predict/batch", json=rows).json()["count"] == 4
        explained = client.post("/predict/batch?explain=true", json={"rows": [VALID_ROW] * 3}).json()
        assert [len(p["explanation"]["top_features"]) for p in explained["predictions"]] == [5, 5, 5]
        # The batch limit is still the first one checked.
        too_many = client.post("/predict/batch?explain=true", json={"rows": [VALID_ROW] * 10_001})
        assert too_many.status_code == 413 and "ELECTION_API_MAX_BATCH_ROWS" in too_many.json()["errors"][0]["reason"]


def test_the_explain_limit_is_documented(settings, champion):
    with make_client(settings) as client:
        operation = client.get("/schema/openapi.json").json()["paths"]["/predict/batch"]["post"]
    assert "at most 1000 with explain=true (ELECTION_API_MAX_EXPLAIN_ROWS)" in operation["description"]
    assert "ELECTION_API_MAX_CONCURRENT_BATCHES" in operation["description"]
    assert "503" in operation["responses"] and "413" in operation["responses"]


def _large_body() -> bytes:
    body = httpx.Request("POST", "/", json={"rows": [VALID_ROW] * 400}).content
    assert len(body) > LARGE_BATCH_BYTES
    return body


def test_large_batches_beyond_the_cap_wait_then_get_a_503(settings, champion):
    body = _large_body()
    with LiveServer(replace(settings, max_concurrent_batches=1, batch_wait_seconds=0.3)) as server:
        slots = server.app.api_state.batch_slots
        holder: list[httpx.Response] = []

        def slow_sender() -> None:
            # Its body trickles in: the request holds the one slot while the server reads it.
            def chunks():
                yield body[:1000]
                time.sleep(1.5)
                yield body[1000:]

            with httpx.Client(base_url=server.url, timeout=10) as http:
                holder.append(
                    http.post("/predict/batch", content=chunks(), headers={"content-type": "application/json"})
                )

        thread = threading.Thread(target=slow_sender)
        thread.start()
        deadline = time.monotonic() + 5
        while slots._semaphore is None or not slots._semaphore.locked():
            assert time.monotonic() < deadline, "the slow request never took the slot"
            time.sleep(0.01)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            started = time.monotonic()
            busy = http.post("/predict/batch", content=body, headers={"content-type": "application/json"})
            waited = time.monotonic() - started
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1" and 0.25 < waited < 1.4
            (error,) = busy.json()["errors"]
            assert error["field"] == "$.rows" and "ELECTION_API_MAX_CONCURRENT_BATCHES" in error["reason"]
            # Small requests never wait for a slot.
            assert http.post("/predict/batch", json={"rows": [VALID_ROW] * 10}).status_code == 200
            assert http.post("/predict", json=VALID_ROW).status_code == 200
            thread.join()
            assert holder[0].status_code == 200 and holder[0].json()["count"] == 400
            # The slot is free again.
            assert (
                http.post("/predict/batch", content=body, headers={"content-type": "application/json"}).status_code
                == 200
            )


def test_large_batches_within_the_wait_are_answered_in_turn(settings, champion):
    body = _large_body()
    with LiveServer(replace(settings, max_concurrent_batches=1, batch_wait_seconds=30)) as server:
        answers: list[int] = []
        lock = threading.Lock()

        def send() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                status = http.post(
                    "/predict/batch?explain=true", content=body, headers={"content-type": "application/json"}
                ).status_code
            with lock:
                answers.append(status)

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * 6
        assert not server.app.api_state.batch_slots._semaphore.locked()
