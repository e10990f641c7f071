"""``make live-demo YEAR=2016``: a past election night end to end on the machine's NATS, then its score.

1. The election-night prior of that year (the walk-forward model trained on earlier elections only): built by the
   Dagster job ``live_prior`` unless ``data/live/prior_<year>.json`` exists.
2. The night is reset (the results stream and the live bucket are deleted and made again), then the replay
   publishes every county report (``SPEED`` messages per second, 0 as fast as possible) while the live updater
   consumes them, until every report is applied.
3. The summary, scored against the actual results, is printed and written to
   ``data/reports/live/replay_<year>.json``; the Dagster job ``live_replay_score`` records it (metadata and an MLflow
   run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from election_assets.core.live import LiveSettings
from election_assets.live import stream
from election_assets.live.prior import ElectionNightPrior
from election_assets.live.replay import REPLAY_YEARS, load_county_returns, replay_messages
from election_assets.live.scoring import actual_winners
from election_assets.live.updater import LiveUpdater, NightLog, connect_with_retries, reset_night
from election_assets.real.features import FEATURE_YEARS

# The estimate (and so a call) is recomputed once per batch: small batches measure the share counted at each call to
# within a few reports (a fifth of a percent of a night) instead of up to 200, at some throughput.
SCORING_BATCH = 20


def national_called_at(night: NightLog, final_votes: float, threshold: float) -> float | None:
    """The share of the final two-party vote counted when the eventual winner's probability reached ``threshold``
    for good (None if it never stayed there)."""
    if not night.national:
        return None
    counted, p_dem = (np.array(column, dtype=float) for column in zip(*night.national, strict=True))
    winner_p = p_dem if p_dem[-1] >= 0.5 else 1.0 - p_dem
    below = np.flatnonzero(winner_p < threshold)
    first = 0 if below.size == 0 else below[-1] + 1
    return None if first >= len(counted) else float(counted[first] / final_votes)


def replay_summary(
    updater: LiveUpdater, state_results: pd.DataFrame, messages: int, seconds: float, threshold: float
) -> dict[str, Any]:
    """The night scored against ``state_results`` (dem_votes, rep_votes by state_po)."""
    estimate, night = updater.estimate, updater.night
    final = state_results["dem_votes"] + state_results["rep_votes"]
    actual = actual_winners(state_results["dem_votes"] / final)
    calls = {
        state: {
            "winner": call.winner,
            "actual_winner": actual[state],
            "counted_share": round(call.counted_votes / float(final[state]), 4),
            "probability": call.probability,
            "reported_at": call.reported_at,
        }
        for state, call in sorted(estimate.calls.items())
    }
    final_p_dem = night.national[-1][1]  # the last estimate the updater wrote
    active = (night.last_applied or 0.0) - (night.first_applied or 0.0)
    return {
        "year": updater.year,
        "prior": {"source": estimate.prior.manifest.source, "trained_through": estimate.prior.manifest.trained_through},
        "call_probability": threshold,
        "states_called": len(calls),
        "wrong_calls": sorted(state for state, call in calls.items() if call["winner"] != call["actual_winner"]),
        "median_called_share": float(np.median([call["counted_share"] for call in calls.values()])) if calls else None,
        "national_winner": "D" if final_p_dem >= 0.5 else "R",
        "national_called_at_share": national_called_at(night, float(final.sum()), threshold),
        "final_p_dem": final_p_dem,
        "messages": messages,
        "applied": estimate.messages_applied,
        "dead_lettered": estimate.dead_lettered,
        "duplicates": estimate.duplicates,
        "seconds": round(seconds, 2),
        "messages_per_second": round(estimate.messages_applied / active, 1) if active > 0 else None,
        "calls": calls,
    }


async def replay_night(
    settings: LiveSettings, prior: ElectionNightPrior, messages: list[dict[str, Any]], speed: float
) -> tuple[LiveUpdater, float]:
    """Reset the year, then publish ``messages`` while an updater consumes them; returns the updater when every
    message is accounted for, and the seconds it took."""
    nc = await connect_with_retries(settings, attempts=5)
    try:
        js = nc.jetstream()
        await reset_night(js, settings)
        await stream.ensure_stream(js, settings)
        updater = LiveUpdater(settings, prior, batch=SCORING_BATCH)
        started = time.perf_counter()

        def finished(estimate) -> bool:
            return estimate.messages_applied + estimate.dead_lettered + estimate.duplicates >= len(messages)

        async def publish() -> None:
            await updater.following.wait()
            await stream.publish_messages(js, messages, settings, speed=speed)

        publishing = asyncio.create_task(publish())
        await updater.run(nc, done=finished)
        await publishing
        return updater, time.perf_counter() - started
    finally:
        await nc.drain()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m election_assets.live.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--year", type=int, required=True, choices=REPLAY_YEARS)
    parser.add_argument("--speed", type=float, default=0.0, help="messages per second; 0 as fast as possible")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import dagster as dg

    from election_assets.launch import launch
    from election_assets.settings import PipelineSettings, SettingsError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parse_args(argv)
    try:
        settings = PipelineSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    prior_path = settings.paths.live_prior(args.year)
    with dg.DagsterInstance.get() as instance:
        if not prior_path.exists():
            # The prior reads the real-mode features of the year and of every year before it.
            years = [str(year) for year in FEATURE_YEARS if year <= args.year]
            for job, partitions in (
                ("real_ingest", [None]),
                ("real_features", years),
                ("live_prior", [str(args.year)]),
            ):
                for partition in partitions:
                    print(f"-> {job}" + (f" [{partition}]" if partition else ""), flush=True)
                    if not launch(job, instance, partition_key=partition).success:
                        print(f"the {job} run failed; see it in the Dagster UI (make ui)", file=sys.stderr)
                        return 1
        prior = ElectionNightPrior.read(prior_path, args.year)
        returns = load_county_returns(settings.real_data_dir)
        messages = replay_messages(returns, args.year)
        pace = "as fast as possible" if args.speed == 0 else f"{args.speed:g} messages/s"
        print(f"-> replaying {args.year}: {len(messages):,} county reports, {pace}, on {settings.live.nats_url}")
        try:
            updater, seconds = asyncio.run(replay_night(settings.live, prior, messages, args.speed))
        except stream.StreamUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        states = returns[returns["year"] == args.year].groupby("state_po")[["dem_votes", "rep_votes"]].sum()
        summary = replay_summary(updater, states, len(messages), seconds, settings.live.call_probability)
        path = settings.paths.replay_summary(args.year)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(render(summary, path))
        print(f"-> live_replay_score [{args.year}]: metadata and an MLflow run")
        if not launch("live_replay_score", instance, partition_key=str(args.year)).success:
            print("the live_replay_score run failed; see it in the Dagster UI (make ui)", file=sys.stderr)
            return 1
    return 0 if not summary["wrong_calls"] else 3


def render(summary: dict[str, Any], path: Any) -> str:
    national = summary["national_called_at_share"]
    return "\n".join(
        [
            f"Election night {summary['year']} (prior: {summary['prior']['source']}):",
            f"  {summary['states_called']} states called, wrong calls: {', '.join(summary['wrong_calls']) or 'none'}",
            f"  median share of a state's vote counted at its call: {summary['median_called_share']:.1%}",
            f"  national winner {summary['national_winner']} known for good at "
            + ("(never)" if national is None else f"{national:.1%} of the national vote counted"),
            f"  {summary['applied']:,} reports applied, {summary['dead_lettered']} dead-lettered, "
            f"{summary['duplicates']} duplicates; {summary['messages_per_second']:,} messages/s",
            f"Summary: {path}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
