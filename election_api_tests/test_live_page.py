"""The election-night page (``GET /live``) in a real browser: Debian's Chromium, driven by Playwright (no browser
download), against the real app under uvicorn and a real key-value bucket on NATS.

``ELECTION_LIVE_SCREENSHOT=/path/to/file.png`` keeps a screenshot of the page with half the states reported.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from election_api_tests.conftest import LiveNight, LiveServer

CHROMIUM = Path(os.environ.get("ELECTION_CHROMIUM", "/usr/bin/chromium"))
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]

# Half the states reported: the swing states close, a few safe ones called.
FIRST_REPORT = {
    "PA": 0.58, "GA": 0.46, "AZ": 0.52, "WI": 0.61, "MI": 0.66, "NV": 0.55, "NC": 0.38, "FL": 0.27, "OH": 0.16,
    "TX": 0.12, "MN": 0.83, "NH": 0.74, "VA": 0.91, "CO": 0.95, "IA": 0.2, "NY": 0.9999, "CA": 0.9999,
    "MA": 0.9999, "VT": 0.9999, "IL": 0.9992, "DC": 0.9999, "OK": 0.0001, "WY": 0.0001, "AL": 0.0003,
    "KY": 0.0004, "WV": 0.0002,
}  # fmt: skip
CALLED = ["NY", "CA", "MA", "VT", "IL", "DC", "OK", "WY", "AL", "KY", "WV"]


def _rgb(css: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", css)
    assert match, css
    red, green, blue = (int(part) for part in match.groups())
    return red, green, blue


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_the_page_draws_the_states_and_follows_the_records(browser, settings, live_bucket, tmp_path):
    from dataclasses import replace

    night = LiveNight(live_bucket)
    night.report(FIRST_REPORT, called=CALLED)
    with LiveServer(replace(settings, live=live_bucket.settings())) as server:
        # Reduced motion: the page skips its transitions, so what is drawn is final at once.
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, reduced_motion="reduce")
        requests: list[str] = []
        problems: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        try:
            page.goto(f"{server.url}/live")
            assert page.locator("#map path.state").count() == 51
            assert page.title().startswith("Election night")
            page.wait_for_function("document.querySelector('#status').classList.contains('live')")
            page.wait_for_function("document.getElementById('state-PA').dataset.pDem === '0.58'")

            def fill_of(state_po: str) -> str:
                # The fill set last (the computed one moves towards it during the CSS transition).
                return page.eval_on_selector(f"#state-{state_po}", "e => e.style.fill || getComputedStyle(e).fill")

            def fill(state_po: str) -> tuple[int, int, int]:
                return _rgb(fill_of(state_po))

            red, _, blue = fill("PA")
            assert blue > red  # leans Democratic
            red, _, blue = fill("TX")
            assert red > blue  # leans Republican
            assert "no-data" in fill_of("SD")  # no estimate yet
            assert fill_of("NY").startswith("url(") and "hatch-D" in fill_of("NY")  # called
            assert page.locator("#map path.state.called").count() == len(CALLED)
            national = night.national()
            assert page.inner_text("#national-p-dem") == f"{round(100 * national.p_dem)}%"
            assert page.inner_text("#ev-dem-called") == str(national.dem_electoral_votes_called)
            assert page.inner_text("#ev-rep-called") == str(national.rep_electoral_votes_called)
            assert page.locator("#called-dem li").count() == 6 and page.locator("#called-rep li").count() == 5
            screenshot = Path(os.environ.get("ELECTION_LIVE_SCREENSHOT") or tmp_path / "live.png")
            page.screenshot(path=str(screenshot), full_page=True)

            # New records while the page is open: Pennsylvania flips and is called, the national figure follows.
            before_pa, before_national = fill("PA"), page.inner_text("#national-p-dem")
            assert before_national != "–"
            night.report({"PA": 0.004, "FL": 0.001, "GA": 0.2, "MI": 0.35}, called=["PA", "FL"])
            page.wait_for_function("document.getElementById('state-PA').dataset.pDem === '0.004'")
            page.wait_for_function(f"document.getElementById('national-p-dem').textContent !== '{before_national}'")
            assert "hatch-R" in fill_of("PA") and before_pa[2] > before_pa[0]
            red, _, blue = fill("MI")
            assert red > blue  # MI now leans Republican
            assert page.inner_text("#ev-rep-called") == str(night.national().rep_electoral_votes_called)
            assert "PA" in page.inner_text("#called-rep")
        finally:
            page.close()
    # Everything the page loaded came from the API itself.
    assert requests and all(url.startswith(server.url) for url in requests), requests
    assert not problems, problems


def test_the_page_waits_for_data_and_says_why(browser, settings, live_bucket):
    from dataclasses import replace

    with LiveServer(replace(settings, live=live_bucket.settings())) as server:
        page = browser.new_page()
        try:
            page.goto(f"{server.url}/live")
            assert page.locator("#map path.state").count() == 51
            notice = page.locator("#notice")
            notice.wait_for(state="visible")
            page.wait_for_function("document.getElementById('notice').textContent.includes('empty')")
            assert "Waiting" in page.inner_text("#status")
            # The first records arrive: the page connects again by itself and draws them.
            LiveNight(live_bucket).report({"OH": 0.3})
            page.wait_for_function("document.getElementById('state-OH').dataset.pDem === '0.3'", timeout=15_000)
            page.wait_for_function("document.querySelector('#status').classList.contains('live')")
            assert notice.is_hidden()
        finally:
            page.close()


def test_random_records_never_break_the_page(browser, settings, live_bucket):
    """Every state at random probabilities, some called, several times over: the page keeps up without errors."""
    from dataclasses import replace

    rng = random.Random(16)
    night = LiveNight(live_bucket)
    with LiveServer(replace(settings, live=live_bucket.settings())) as server:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            page.goto(f"{server.url}/live")
            for _ in range(3):
                report = {state_po: rng.random() for state_po in night.electoral_votes}
                night.report(report, called=[po for po, p in report.items() if min(p, 1 - p) < 0.05])
            last = f"{report['WY']}"
            page.wait_for_function(f"document.getElementById('state-WY').dataset.pDem === '{last}'")
            assert page.locator("#closest li").count() == 8
        finally:
            page.close()
    assert not problems, problems


@pytest.mark.slow
def test_the_page_follows_a_replayed_night_through_the_updater(browser, settings, live_bucket):
    """A real replay (four small states of 2016) through the live updater while the page is open: the states fill
    in, get called, and the national figures move, without a reload."""
    import asyncio
    import threading
    import uuid
    from dataclasses import replace

    from election_assets.live import stream
    from election_assets.live.replay import load_county_returns, replay_messages
    from election_assets.live.updater import LiveUpdater, connect_with_retries
    from election_assets_tests.live_fixtures import small_prior

    returns = load_county_returns()
    returns = returns[returns["state_po"].isin(("DE", "RI", "HI", "VT"))]
    messages = replay_messages(returns, 2016)
    token = uuid.uuid4().hex[:10]
    live = live_bucket.settings(results_stream=f"TEST_PAGE_{token}", subject_prefix=f"test_{token}.results")
    stop = threading.Event()
    following = threading.Event()

    async def updater() -> None:
        nc = await connect_with_retries(live, attempts=3)
        try:
            night = LiveUpdater(live, small_prior(returns, 2016), batch=4)
            running = asyncio.create_task(night.run(nc, done=lambda _: stop.is_set()))
            await night.following.wait()
            following.set()
            await running
        finally:
            await nc.jetstream().delete_stream(live.results_stream)
            await nc.drain()

    thread = threading.Thread(target=asyncio.run, args=(updater(),), daemon=True)
    thread.start()
    try:
        assert following.wait(timeout=30), "the updater did not start"
        with LiveServer(replace(settings, live=live)) as server:
            page = browser.new_page(reduced_motion="reduce")
            try:
                page.goto(f"{server.url}/live")
                # The updater's first estimate, from the prior alone: nothing counted, nothing called.
                page.wait_for_function("document.getElementById('state-VT').dataset.pDem !== undefined")
                before = page.eval_on_selector("#state-VT", "e => e.dataset.pDem")
                assert page.locator("#map path.state.called").count() == 0
                # Playwright's sync API holds this thread's event loop: the replay publishes from a thread of its own.
                replay = threading.Thread(
                    target=asyncio.run, args=(stream.replay_to_stream(messages, live, speed=150),)
                )
                replay.start()
                replay.join(timeout=30)
                page.wait_for_function(
                    "document.querySelectorAll('#map path.state.called').length === 4", timeout=20_000
                )
                assert page.eval_on_selector("#state-VT", "e => e.dataset.pDem") != before
                assert "VT" in page.inner_text("#called-dem") and "HI" in page.inner_text("#called-dem")
            finally:
                page.close()
    finally:
        stop.set()
        thread.join(timeout=15)
