"""Scoring a replayed election night: the live updater's calls checked against the actual results.

``make live-demo YEAR=<year>`` replays a past election through the updater and writes a summary
(``StorePaths.replay_summary(year)``, JSON). ``score_replay`` scores it against the state results themselves, not
against the summary's own ``wrong_calls`` or ``actual_winner`` fields: it recomputes which calls were wrong and who
won the presidency, and lists where the summary disagrees with the results (there should be nothing there). How
early the calls came is the share of the state's expected vote counted at each call, and the share counted
nationwide when the presidency was called.

Pure Python and pandas (no Dagster, no MLflow): the ``replay_score`` asset (``defs/live``) wires it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "SUMMARY_KEYS",
    "CallScore",
    "ReplayScore",
    "ReplaySummaryError",
    "actual_winners",
    "read_replay_summary",
    "score_replay",
]

# What the replay summary must hold for it to be scored.
SUMMARY_KEYS = (
    "year",
    "states_called",
    "wrong_calls",
    "national_called_at_share",
    "national_winner",
    "calls",
    "messages",
    "messages_per_second",
    "dead_lettered",
    "duplicates",
    "seconds",
)
# The run's counters copied from the summary as they are (the score does not recompute them).
RUN_COUNTERS = ("messages", "messages_per_second", "dead_lettered", "duplicates", "seconds")
DEM, REP = "D", "R"


class ReplaySummaryError(ValueError):
    """A replay summary that is missing, unreadable, incomplete or of another year."""


def read_replay_summary(path: Path, year: int) -> dict[str, Any]:
    """The summary ``make live-demo`` wrote for ``year``, with every key of ``SUMMARY_KEYS``."""
    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReplaySummaryError(
            f"no replay summary for {year} at {path}: run `make live-demo YEAR={year}` first (it replays the "
            "election night through the live updater and writes this file), then materialize replay_score again"
        ) from error
    except (OSError, ValueError) as error:
        raise ReplaySummaryError(f"cannot read the replay summary {path}: {error}") from error
    if not isinstance(summary, dict):
        raise ReplaySummaryError(f"{path} is not a JSON object")
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ReplaySummaryError(f"{path} lacks {', '.join(missing)}; rerun `make live-demo YEAR={year}`")
    if int(summary["year"]) != year:
        raise ReplaySummaryError(f"{path} is the replay of {summary['year']}, not {year}")
    return summary


def actual_winners(state_dem_share: pd.Series) -> dict[str, str]:
    """Who carried each state (``D`` or ``R``), from its Democratic two-party share."""
    return {str(state): DEM if share > 0.5 else REP for state, share in state_dem_share.items()}


@dataclass(frozen=True)
class CallScore:
    state_po: str
    winner: str  # the updater's call
    actual_winner: str  # from the results
    counted_share: float  # of the state's expected two-party vote when the call was made

    @property
    def right(self) -> bool:
        return self.winner == self.actual_winner


@dataclass(frozen=True)
class ReplayScore:
    year: int
    calls: tuple[CallScore, ...]  # in the order of the share counted at the call (earliest first)
    uncalled: tuple[str, ...]  # states in the results the updater never called
    national_winner: str | None  # the summary's
    national_called_at_share: float | None  # share of the national vote counted when the presidency was called
    actual_national_winner: str
    actual_dem_electoral_votes: int
    # Where the summary contradicts the results: a call it counts as wrong that was right or the reverse, an
    # ``actual_winner`` other than the results', a ``states_called`` other than its calls.
    disagreements: tuple[str, ...]
    run: dict[str, float | None]  # the run's counters (RUN_COUNTERS) as the summary gives them (None: not measured)
    prior: dict[str, Any]  # what the summary says of the prior the updater started from (source, trained_through)

    @property
    def states_called(self) -> int:
        return len(self.calls)

    @property
    def wrong_calls(self) -> tuple[str, ...]:
        return tuple(sorted(call.state_po for call in self.calls if not call.right))

    @property
    def median_called_share(self) -> float:
        return float(pd.Series([call.counted_share for call in self.calls]).median()) if self.calls else math.nan

    @property
    def national_called(self) -> bool:
        return self.national_called_at_share is not None

    @property
    def national_right(self) -> bool:
        return self.national_winner == self.actual_national_winner

    def metrics(self) -> dict[str, float]:
        """Numbers only (for MLflow); the share counted at each call is ``called_share.<state>``."""
        metrics = {
            "states_called": float(self.states_called),
            "wrong_calls": float(len(self.wrong_calls)),
            "states_uncalled": float(len(self.uncalled)),
            "national_called": float(self.national_called),
            "national_winner_right": float(self.national_right),
            "actual_dem_electoral_votes": float(self.actual_dem_electoral_votes),
            "summary_disagreements": float(len(self.disagreements)),
            **{key: float(value) for key, value in self.run.items() if value is not None},
        }
        if self.calls:
            metrics["median_called_share"] = self.median_called_share
            metrics["min_called_share"] = min(call.counted_share for call in self.calls)
        if self.national_called_at_share is not None:
            metrics["national_called_at_share"] = float(self.national_called_at_share)
        metrics.update({f"called_share.{call.state_po}": call.counted_share for call in self.calls})
        return metrics

    def markdown(self) -> str:
        """The calls, earliest first: who was called, who won, the share counted at the call."""
        lines = ["| state | called | result | share counted at call | |", "|---|---|---|---:|---|"]
        for call in self.calls:
            verdict = "right" if call.right else "**wrong**"
            lines.append(
                f"| {call.state_po} | {call.winner} | {call.actual_winner} | {call.counted_share:.1%} | {verdict} |"
            )
        if self.uncalled:
            lines.append(f"\nNever called: {', '.join(self.uncalled)}.")
        return "\n".join(lines)


def score_replay(
    summary: Mapping[str, Any], state_dem_share: pd.Series, electoral_votes: Mapping[str, int]
) -> ReplayScore:
    """Score a replay summary (``read_replay_summary``) against the year's state results (``state_dem_share``: the
    Democratic two-party share by postal code, ``real.features.state_shares``) and electoral votes.

    The presidency's actual winner gives each state's electoral votes to its statewide winner (Maine's and
    Nebraska's districts are not split out: no replayed year's winner depends on them)."""
    year = int(summary["year"])
    winners = actual_winners(state_dem_share)
    unknown = sorted(set(summary["calls"]) - set(winners))
    if unknown:
        raise ValueError(f"the {year} replay called {', '.join(unknown)}, which the {year} results do not have")
    calls = sorted(
        (
            CallScore(str(state), str(call["winner"]), winners[state], float(call["counted_share"]))
            for state, call in summary["calls"].items()
        ),
        key=lambda call: (call.counted_share, call.state_po),
    )
    total = sum(electoral_votes.values())
    dem_votes = sum(votes for state, votes in electoral_votes.items() if winners.get(state) == DEM)
    score = ReplayScore(
        year=year,
        calls=tuple(calls),
        uncalled=tuple(sorted(set(winners) - set(summary["calls"]))),
        national_winner=summary["national_winner"],
        national_called_at_share=summary["national_called_at_share"],
        actual_national_winner=DEM if 2 * dem_votes > total else REP,
        actual_dem_electoral_votes=dem_votes,
        disagreements=(),
        run={key: None if summary[key] is None else float(summary[key]) for key in RUN_COUNTERS},
        prior=dict(summary.get("prior") or {}),
    )
    return _with_disagreements(score, summary)


def _with_disagreements(score: ReplayScore, summary: Mapping[str, Any]) -> ReplayScore:
    notes = []
    reported = {str(state) for state in summary["wrong_calls"]}
    recomputed = set(score.wrong_calls)
    for state in sorted(reported - recomputed):
        notes.append(f"{state}: the summary counts its call as wrong, the results say it was right")
    for state in sorted(recomputed - reported):
        notes.append(f"{state}: the summary counts its call as right, the results say it was wrong")
    for call in score.calls:
        if (claimed := summary["calls"][call.state_po].get("actual_winner")) not in (None, call.actual_winner):
            notes.append(f"{call.state_po}: the summary's actual winner is {claimed}, the results {call.actual_winner}")
    states_called = summary["states_called"]
    count = len(states_called) if isinstance(states_called, list | tuple) else int(states_called)
    if count != score.states_called:
        notes.append(f"the summary says {count} states were called, its calls hold {score.states_called}")
    return replace(score, disagreements=tuple(notes))
