"""Election night's contract between the live updater, the API and the operators: where things are on NATS and
what the key-value bucket holds.

- County results arrive on the JetStream stream ``results_stream``, subjects ``<prefix>.<year>.<state_po>``.
- The updater writes the latest estimate to the JetStream key-value bucket ``live_bucket``: key ``national`` holds
  a :class:`NationalLive`, key ``state.<state_po>`` a :class:`StateLive`. The API reads only this bucket.
- Every batch of updates is also published on ``<prefix>.updates.<year>`` (a JSON object with ``national`` and the
  changed ``states``), and every rejected message on ``<prefix>.deadletter.<year>`` with its reason; both subjects
  fall inside the results stream, so they are kept.

Standard library only, like the rest of ``core``: the API imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from election_assets.core.env import env_matching, env_number

__all__ = [
    "DEAD_LETTER_REASONS",
    "NATIONAL_KEY",
    "LiveSettings",
    "NationalLive",
    "StateCall",
    "StateLive",
    "state_key",
]

NATIONAL_KEY = "national"
_STATE_KEY_PREFIX = "state."

# Why the updater set a message aside instead of applying it (the ``reason`` of a dead letter, a metric label).
DEAD_LETTER_REASONS = (
    "malformed_json",  # not a JSON object
    "invalid_message",  # breaks county_result.schema.json (a missing field, negative votes, ...)
    "unknown_county",  # a FIPS code the election-night prior does not hold, or one filed under another state
    "wrong_year",  # a year other than the one the updater follows
    "count_decreased",  # a new report with fewer votes than the county's previous one
)


def state_key(state_po: str) -> str:
    return f"{_STATE_KEY_PREFIX}{state_po}"


def state_of_key(key: str) -> str | None:
    return key.removeprefix(_STATE_KEY_PREFIX) if key.startswith(_STATE_KEY_PREFIX) else None


@dataclass(frozen=True)
class LiveSettings:
    """Where election night lives on NATS; read by the replay, the updater and the API alike."""

    nats_url: str = "nats://127.0.0.1:4222"
    results_stream: str = "ELECTION_RESULTS"
    subject_prefix: str = "results"
    live_bucket: str = "election_live"
    # A state is called once its leader's probability reaches this, and stays called.
    call_probability: float = 0.995

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveSettings:
        env = os.environ if env is None else env
        name = r"[A-Za-z0-9_-]+"
        return cls(
            nats_url=env_matching(
                env, "ELECTION_NATS_URL", cls.nats_url, r"(nats|tls)://\S+", "a NATS URL such as nats://127.0.0.1:4222"
            ),
            results_stream=env_matching(
                env,
                "ELECTION_RESULTS_STREAM",
                cls.results_stream,
                name,
                "a JetStream stream name (letters, digits, _ and -)",
            ),
            subject_prefix=env_matching(
                env,
                "ELECTION_RESULTS_SUBJECT_PREFIX",
                cls.subject_prefix,
                rf"{name}(\.{name})*",
                "NATS subject tokens separated by dots, without wildcards (for example results)",
            ),
            live_bucket=env_matching(
                env,
                "ELECTION_LIVE_BUCKET",
                cls.live_bucket,
                name,
                "a JetStream key-value bucket name (letters, digits, _ and -)",
            ),
            call_probability=env_number(env, "ELECTION_CALL_PROBABILITY", cls.call_probability, 0.5, 0.999999),
        )

    def results_subject(self, year: int, state_po: str) -> str:
        return f"{self.subject_prefix}.{year}.{state_po}"

    def results_filter(self, year: int) -> str:
        """Every state's results of ``year`` (what the updater consumes)."""
        return f"{self.subject_prefix}.{year}.*"

    def updates_subject(self, year: int) -> str:
        return f"{self.subject_prefix}.updates.{year}"

    def dead_letter_subject(self, year: int) -> str:
        return f"{self.subject_prefix}.deadletter.{year}"


class _JsonRecord:
    """JSON (de)serialisation shared by the bucket's records: every field, nothing else."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str):
        payload = json.loads(data)
        names = {field.name for field in fields(cls)}
        return cls(**{name: payload[name] for name in names if name in payload})


@dataclass(frozen=True)
class StateCall(_JsonRecord):
    """A call: who carries the state, and how much of its expected vote was counted when it was made."""

    winner: str  # "D" or "R"
    probability: float
    counted_share: float  # of the state's expected two-party vote at the time of the call
    counted_votes: int  # two-party votes counted at the time of the call
    messages_applied: int  # county reports applied (all states) when the call was made
    reported_at: str  # the county report that triggered it (its ``reported_at``)


@dataclass(frozen=True)
class StateLive(_JsonRecord):
    """One state's live estimate (key ``state.<state_po>``)."""

    year: int
    state_po: str
    electoral_votes: int
    p_dem: float  # probability the Democratic candidate carries the state
    expected_dem_share: float  # of the two-party vote, final count
    dem_share_sd: float
    counted_dem_share: float | None  # of the two-party votes counted so far; None before any
    counted_votes: int  # two-party votes counted
    expected_votes: float  # two-party votes expected in the end (counted plus the re-estimated remainder)
    counties_reported: int
    counties_complete: int
    counties: int
    call: dict[str, Any] | None  # a StateCall as a dict, None until called
    updated_at: str  # when this record was written (UTC, ISO 8601)

    @property
    def counted_share(self) -> float:
        return self.counted_votes / self.expected_votes if self.expected_votes > 0 else 0.0

    @property
    def leader(self) -> str:
        return "D" if self.p_dem >= 0.5 else "R"


@dataclass(frozen=True)
class NationalLive(_JsonRecord):
    """The presidency (key ``national``)."""

    year: int
    p_dem: float  # probability the Democratic candidate wins 270 or more electoral votes
    dem_electoral_votes_median: int
    dem_electoral_votes_low: int  # 10th percentile
    dem_electoral_votes_high: int  # 90th percentile
    dem_electoral_votes_called: int  # from called states only
    rep_electoral_votes_called: int
    states_called: int
    national_swing_mean: float  # the estimated national error of the prior (Democratic share points, 0-1 scale)
    national_swing_sd: float
    counted_votes: int
    expected_votes: float
    messages_applied: int
    duplicates: int
    dead_lettered: int
    last_sequence: int  # the results stream's sequence of the last message this estimate includes
    updated_at: str

    @property
    def counted_share(self) -> float:
        return self.counted_votes / self.expected_votes if self.expected_votes > 0 else 0.0
