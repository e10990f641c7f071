"""Replay a past election night from the shipped county returns: the ordered county result messages, and the CLI.

``replay_messages`` is pure (no NATS): it turns one year's county returns into the messages an election night would
bring, in a realistic order.

- **States open in order of poll-closing time** (``POLL_CLOSING_ET``). A state's first county reports a few minutes
  after its polls close, so the first message of each state comes in that order.
- **Counties within a state report in a seeded order**, their first reports spread over the next two and a half
  hours, and each county reports in 3 or 4 steps (2 or 3 partial counts at seeded fractions of its final count, then
  the final count, status ``complete``) 15 to 75 minutes apart. Messages of all states are merged by their simulated
  time, so western states start while eastern ones are still counting.
- **Partial counts are not a scaled-down final count.** Each county gets a seeded tilt: its Democratic votes are
  counted a little earlier or later than its Republican ones (the early-vote or election-day shift), so a partial
  count's margin differs from the final one; every count only grows and the last equals the returns.

Everything random comes from ``numpy.random.default_rng`` seeded by (seed, year, state), so one state's messages are
the same whether it is replayed alone or with the others.

The CLI, ``python -m election_assets.live.replay --year 2020 [--speed N]`` (``make replay YEAR=2020 SPEED=N``),
publishes them to the JetStream stream the settings name (``election_assets.live.stream``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

__all__ = [
    "POLL_CLOSING_ET",
    "REPLAY_YEARS",
    "election_day",
    "load_county_returns",
    "message_schema",
    "replay_messages",
]

# The presidential elections a replay can use: those the real model's walk-forward backtest forecasts (a prior
# trained on earlier elections only exists for them).
REPLAY_YEARS = (2008, 2012, 2016, 2020)
DEFAULT_SEED = 16
EASTERN = ZoneInfo("America/New_York")

# When each state's polls close, in US Eastern time, as minutes after midnight of election day (1440 is midnight,
# 1500 one in the morning). A SOURCE-FREE APPROXIMATION written from general knowledge, not from an official table:
# the time the last polls in the state close, which has moved by up to an hour in some states between 2008 and 2020
# (and differs within states that span two time zones). It only orders the replay; nothing is scored against it.
_CLOSING_GROUPS = {
    "19:00": "GA IN KY SC VT VA",
    "19:30": "NC OH WV",
    "20:00": "AL CT DC DE FL IL ME MD MA MS MO NH NJ OK PA RI TN",
    "20:30": "AR",
    "21:00": "AZ CO KS LA MI MN NE NM NY SD TX WI WY",
    "22:00": "IA MT ND NV UT",
    "23:00": "CA ID OR WA",
    "24:00": "HI",
    "25:00": "AK",
}
POLL_CLOSING_ET: dict[str, int] = {
    state: int(clock[:2]) * 60 + int(clock[3:]) for clock, states in _CLOSING_GROUPS.items() for state in states.split()
}

# A state's counties first report over this many minutes after the first one, which reports this soon after close.
_FIRST_REPORT_MINUTES = 5
_REPORTING_SPREAD_MINUTES = 150
_STEP_GAP_MINUTES = (15, 75)
_PARTIAL_FRACTIONS = (0.05, 0.95)
# Standard deviation of the log-exponent that tilts when a county's Democratic and Republican votes are counted.
_TILT_SD = 0.15
_COLUMNS = ("county_fips", "state_po", "county_name", "dem_votes", "rep_votes", "total_votes")


def election_day(year: int) -> date:
    """The US general election: the Tuesday after the first Monday of November."""
    first = date(year, 11, 1)
    first_monday = first + timedelta(days=(0 - first.weekday()) % 7)
    return first_monday + timedelta(days=1)


def message_schema() -> dict[str, Any]:
    """The county result message's JSON Schema (``county_result.schema.json``), the stream's one contract."""
    text = resources.files("election_assets.live").joinpath("county_result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_county_returns(directory: Path | None = None) -> pd.DataFrame:
    """The tidy county returns (year, county_fips, state_po, county_name, dem_votes, rep_votes, total_votes)."""
    from election_assets.real.sources import SHIPPED_REAL_DATA_DIR, read_source, tidy_county_returns

    return tidy_county_returns(read_source("county_returns", directory or SHIPPED_REAL_DATA_DIR)).frame


def _state_rng(seed: int, year: int, state_po: str) -> np.random.Generator:
    return np.random.default_rng([seed, year, zlib.crc32(state_po.encode())])


def _county_steps(row: Any, rng: np.random.Generator) -> list[tuple[float, int, int, int]]:
    """(fraction, dem, rep, total) so far for each step of one county; the last is the final count."""
    partials = int(rng.integers(2, 4))
    fractions = np.sort(rng.uniform(*_PARTIAL_FRACTIONS, size=partials))
    tilt = rng.normal(0.0, _TILT_SD)
    dem, rep, total = int(row.dem_votes), int(row.rep_votes), int(row.total_votes)
    other = max(total - dem - rep, 0)
    steps = []
    for fraction in fractions:
        dem_so_far = math.floor(dem * fraction ** math.exp(-tilt))
        rep_so_far = math.floor(rep * fraction ** math.exp(tilt))
        total_so_far = dem_so_far + rep_so_far + math.floor(other * fraction)
        steps.append((float(fraction), dem_so_far, rep_so_far, total_so_far))
    steps.append((1.0, dem, rep, total))
    return steps


def replay_messages(county_returns: pd.DataFrame, year: int, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Every county result message of ``year``'s election night, in the order they are published.

    ``county_returns`` is the tidy county returns (any years; only ``year``'s rows are used, and they may be a
    subset, for example one state). Raises ValueError when it has no row for ``year`` or a state has no closing time.
    """
    rows = county_returns.loc[county_returns["year"] == year, list(_COLUMNS)]
    if rows.empty:
        raise ValueError(f"the county returns have no row for {year}")
    unknown = sorted(set(rows["state_po"]) - set(POLL_CLOSING_ET))
    if unknown:
        raise ValueError(f"no poll-closing time for {', '.join(unknown)}")
    midnight = datetime.combine(election_day(year), datetime.min.time(), tzinfo=EASTERN)
    keyed: list[tuple[tuple, dict[str, Any]]] = []
    for state_po, state_rows in rows.groupby("state_po", sort=True):
        close = POLL_CLOSING_ET[state_po]
        rng = _state_rng(seed, year, state_po)
        ordered = state_rows.sort_values("county_fips").iloc[rng.permutation(len(state_rows))]
        for position, row in enumerate(ordered.itertuples(index=False)):
            minutes = close + _FIRST_REPORT_MINUTES + _REPORTING_SPREAD_MINUTES * position / len(ordered)
            steps = _county_steps(row, rng)
            for number, (_, dem, rep, total) in enumerate(steps, start=1):
                if number > 1:
                    minutes += float(rng.uniform(*_STEP_GAP_MINUTES))
                complete = number == len(steps)
                # A UTC-offset-aware wall time: election day is after the end of daylight saving time (EST, -05:00).
                reported = (midnight + timedelta(minutes=minutes)).astimezone(EASTERN).replace(microsecond=0)
                message = {
                    "message_id": f"{year}-{row.county_fips}-{number}",
                    "year": int(year),
                    "state_po": state_po,
                    "county_fips": row.county_fips,
                    "county_name": row.county_name,
                    "step": number,
                    "steps": len(steps),
                    "dem_votes": dem,
                    "rep_votes": rep,
                    "total_votes": total,
                    "counted_share": 1.0 if complete else round(min(total / max(row.total_votes, 1), 1.0), 4),
                    "status": "complete" if complete else "partial",
                    "reported_at": reported.isoformat(),
                }
                keyed.append(((reported, close, state_po, position, number), message))
    keyed.sort(key=lambda pair: pair[0])
    return [message for _, message in keyed]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m election_assets.live.replay",
        description="Publish a past election night's county results to the NATS JetStream results stream.",
    )
    parser.add_argument("--year", type=int, required=True, choices=REPLAY_YEARS, help="the election to replay")
    parser.add_argument(
        "--speed", type=float, default=200.0, help="messages per second; 0 publishes as fast as possible (default 200)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"the order's seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    if not math.isfinite(args.speed) or args.speed < 0:
        parser.error("--speed must be a number of messages per second, 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    import asyncio

    from election_assets.live import stream
    from election_assets.settings import PipelineSettings, SettingsError

    args = _parse_args(argv)
    try:
        settings = PipelineSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    live = settings.live
    messages = replay_messages(load_county_returns(settings.real_data_dir), args.year, args.seed)
    counties = len({message["county_fips"] for message in messages})
    pace = "as fast as possible" if args.speed == 0 else f"{args.speed:g} messages/s"
    print(
        f"Replaying {args.year}: {len(messages):,} messages from {counties:,} counties, {pace}, to stream "
        f"{live.results_stream} ({live.results_subject(args.year, '<state>')}) on {live.nats_url}"
    )
    try:
        summary = asyncio.run(
            stream.replay_to_stream(
                messages,
                live,
                speed=args.speed,
                progress=lambda line: print(f"  {line}", flush=True),
            )
        )
    except stream.StreamUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
