"""The live estimate: county reports in, state and national win probabilities out (NumPy only, no I/O).

The model is the real forecaster's, made conditional on what has been counted. County ``c`` of state ``s`` ends
with the Democratic two-party share

    share_c = prior_c + national + state_s + county_c,  national ~ N(0, σn²), state_s ~ N(0, σs²), county_c ~ N(0, σc²)

(the prior's forecast and error parts; σc is the county's own, larger for small counties). A report of a fraction
``f`` of the county's expected vote shows the share counted so far, which differs from the final share by the
order votes are counted in (early and mail votes lean one way, election-day votes the other):

    counted_c = share_c + order_c,  order_c ~ N(0, τ² (1 - f) / f)     (τ = PARTIAL_COUNT_SD; 0 once complete)

Everything is Gaussian and linear, so the posterior is exact and cheap:

- Given the national error, states are independent. Each state's reports give a precision ``P_s = Σ 1/v_c`` and a
  weighted sum ``b_s = Σ x_c/v_c`` of the surprises ``x_c = counted_c - prior_c`` (``v_c = σc² + τ²(1-f)/f``).
- The national error's posterior is normal with precision ``1/σn² + Σ_s P_s/(1 + σs² P_s)`` and mean
  ``Σ_s b_s/(1 + σs² P_s)`` over that precision; a state's error given the national one has precision
  ``λ_s = 1/σs² + P_s``.
- A county's final share given the national and state errors has mean ``prior_c + k_c x_c + (1-k_c)(national +
  state_s)`` with ``k_c = σc²/v_c`` (1 when complete: the count is the result), and variance ``σc² (1 - k_c)``.
- The state's final share weighs its counties by their final two-party votes: counted votes divided by the share of
  the expected vote counted, or for a county not yet in, its expected votes times the turnout counties report
  against their expectation so far. It is normal given the national error, and normal overall.

State probabilities are exact normal probabilities; the electoral votes integrate the national error by Gauss-Hermite
quadrature, with the states' votes convolved exactly at each node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema_rs
import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import qmc

from election_assets.core.live import NationalLive, StateCall, StateLive
from election_assets.live.prior import ElectionNightPrior

# The spread of a half-counted county's share around its final share from the order votes are counted in.
# The replay's counting order (replay.py: a log-exponent tilt with SD 0.15 between Democratic and Republican
# votes) gives about 0.05 at half counted in a close county; real nights have shown shifts of that size.
PARTIAL_COUNT_SD = 0.05
WINNING_ELECTORAL_VOTES = 270
_SHARED_DRAWS = 128  # quasi-random draws of the shared errors for the electoral votes (a power of 2)
_LOWEST_COUNTED_SHARE = 0.001  # a report claiming less than this of the county's vote counts as this much


class DeadLetter(Exception):
    """A message the estimate cannot apply; ``reason`` is one of ``core.live.DEAD_LETTER_REASONS``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _validator() -> jsonschema_rs.Draft202012Validator:
    text = resources.files("election_assets.live").joinpath("county_result.schema.json").read_text(encoding="utf-8")
    return jsonschema_rs.Draft202012Validator(json.loads(text))


_SCHEMA = _validator()


def parse_message(data: bytes) -> dict[str, Any]:
    """The message as a dict, or DeadLetter naming what is wrong (the field and why, for a schema breach)."""
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise DeadLetter("malformed_json", f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise DeadLetter("malformed_json", f"a JSON {type(message).__name__}, not an object")
    error = next(_SCHEMA.iter_errors(message), None)
    if error is not None:
        where = "/".join(str(part) for part in error.instance_path) or "(message)"
        raise DeadLetter("invalid_message", f"{where}: {error.message}")
    if message["dem_votes"] + message["rep_votes"] > message["total_votes"]:
        raise DeadLetter("invalid_message", "total_votes: fewer than dem_votes + rep_votes")
    return message


@dataclass
class LiveEstimate:
    """The counts of one election night and the estimate they give; ``apply`` then ``snapshot``."""

    prior: ElectionNightPrior
    call_probability: float = 0.995
    partial_count_sd: float = PARTIAL_COUNT_SD
    messages_applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    calls: dict[str, StateCall] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prior = self.prior
        self._index = {fips: i for i, fips in enumerate(prior.county_fips)}
        self.states = tuple(sorted(prior.electoral_votes))
        state_number = {state: i for i, state in enumerate(self.states)}
        self._state_of = np.array([state_number[state] for state in prior.state_po])
        self._ev = np.array([prior.electoral_votes[state] for state in self.states])
        n = len(prior.county_fips)
        self.dem = np.zeros(n, dtype=np.int64)
        self.rep = np.zeros(n, dtype=np.int64)
        self.total = np.zeros(n, dtype=np.int64)
        self.counted_share = np.zeros(n)
        self.step = np.zeros(n, dtype=np.int64)  # the last report applied, 0 before any
        self._applied: set[str] = set()
        self._latest_report: dict[str, str] = {}  # per state, the reported_at of its last report applied
        self._loadings = np.column_stack([np.ones(n), prior.covariates])
        self._prior_information = np.diag(1.0 / np.concatenate([[prior.noise.national], prior.realignment_sd]) ** 2)
        sobol = qmc.Sobol(self._loadings.shape[1], scramble=True, seed=0).random(_SHARED_DRAWS)
        self._draws = ndtri(np.clip(sobol, 1e-9, 1 - 1e-9))

    # -- counting ------------------------------------------------------------------------------------------------

    def apply(self, message: dict[str, Any]) -> bool:
        """Apply a parsed message; False if it was applied before (a redelivery). DeadLetter if it cannot be."""
        if message["message_id"] in self._applied:
            self.duplicates += 1
            return False
        if message["year"] != self.prior.year:
            raise DeadLetter("wrong_year", f"year: {message['year']}, the updater follows {self.prior.year}")
        i = self._index.get(message["county_fips"])
        if i is None or self.prior.state_po[i] != message["state_po"]:
            raise DeadLetter(
                "unknown_county",
                f"county_fips: {message['county_fips']} is not a county of {message['state_po']} in the "
                f"{self.prior.year} prior",
            )
        dem, rep, total = message["dem_votes"], message["rep_votes"], message["total_votes"]
        if dem < self.dem[i] or rep < self.rep[i] or total < self.total[i]:
            raise DeadLetter(
                "count_decreased",
                f"county {message['county_fips']} report {message['message_id']}: votes "
                f"{dem}/{rep}/{total} (dem/rep/total) below the {self.dem[i]}/{self.rep[i]}/{self.total[i]} "
                "already counted",
            )
        self.dem[i], self.rep[i], self.total[i] = dem, rep, total
        self.counted_share[i] = 1.0 if message["status"] == "complete" else float(message["counted_share"])
        self.step[i] = max(self.step[i], message["step"])
        self._applied.add(message["message_id"])
        self._latest_report[message["state_po"]] = message["reported_at"]
        self.messages_applied += 1
        return True

    # -- the estimate --------------------------------------------------------------------------------------------

    def _county_terms(self) -> dict[str, np.ndarray]:
        prior = self.prior
        counted = (self.dem + self.rep).astype(float)
        reported = counted > 0
        share = np.clip(self.counted_share, _LOWEST_COUNTED_SHARE, 1.0)
        final_counted = np.where(reported, counted / share, 0.0)
        expected = prior.expected_votes
        # Turnout against expectation so far, from the counties in: it rescales the ones still to report.
        turnout = final_counted[reported].sum() / expected[reported].sum() if reported.any() else 1.0
        final_votes = np.where(reported, final_counted, expected * turnout)
        sigma2 = prior.county_sd**2
        order2 = self.partial_count_sd**2 * (1.0 - share) / share
        variance = sigma2 + order2
        gain = np.where(reported, sigma2 / variance, 0.0)
        surprise = np.where(reported, self.dem / np.maximum(counted, 1.0) - prior.expected_dem_share, 0.0)
        return {
            "counted": counted,
            "reported": reported,
            "final_votes": final_votes,
            "anchor": prior.expected_dem_share + gain * surprise,
            "gain": gain,
            "sigma2": sigma2,
            "precision": np.where(reported, 1.0 / variance, 0.0),
            "surprise": surprise,
        }

    def posterior(self) -> dict[str, Any]:
        """The shared errors' posterior (national and realignment, ``g``) and each state's final share given them:
        normal with mean ``offset + slope @ g`` and variance ``conditional_var`` (arrays over ``self.states``)."""
        terms = self._county_terms()
        prior, states = self.prior, len(self.states)
        loadings = self._loadings  # counties x (1 + covariates): how each county's share moves with g

        def by_state(values: np.ndarray) -> np.ndarray:
            """Per-state sums of a per-county array (the first axis), any trailing shape."""
            flat = values.reshape(len(values), -1)
            sums = np.stack([np.bincount(self._state_of, weights=col, minlength=states) for col in flat.T], axis=1)
            return sums.reshape((states, *values.shape[1:]))

        precision = terms["precision"]  # 1/v_c, 0 for a county not in
        surprise = terms["surprise"]
        state_precision = 1.0 / prior.noise.state**2 + by_state(precision)  # λ_s
        evidence = by_state(precision * surprise)  # b_s
        towards = by_state(precision[:, None] * loadings)  # r_s
        # The state errors integrated out (Sherman-Morrison per state): the information about g.
        information = self._prior_information + np.einsum("c,ci,cj->ij", precision, loadings, loadings)
        information -= np.einsum("s,si,sj->ij", 1.0 / state_precision, towards, towards)
        pulled = (precision * surprise) @ loadings - (evidence / state_precision) @ towards
        covariance = np.linalg.inv(information)
        mean = covariance @ pulled

        weight = terms["final_votes"]
        votes = np.maximum(by_state(weight), 1e-9)
        share = weight / votes[self._state_of]  # each county's part of its state's final vote
        follows = share * (1.0 - terms["gain"])  # how much of that part is still unknown
        anchor = by_state(share * terms["anchor"])  # A_s
        loading = by_state(follows)  # B_s
        return {
            "shared_mean": mean,
            "shared_covariance": covariance,
            "national_mean": float(mean[0]),
            "national_sd": float(np.sqrt(covariance[0, 0])),
            "offset": anchor + loading * evidence / state_precision,
            "slope": by_state(follows[:, None] * loadings) - (loading / state_precision)[:, None] * towards,
            "conditional_var": loading**2 / state_precision
            + by_state(share**2 * terms["sigma2"] * (1 - terms["gain"])),
            "counted_votes": by_state(terms["counted"]),
            "final_votes": votes,
            "counted_dem": by_state(self.dem.astype(float)),
            "reported": by_state(terms["reported"].astype(float)),
            "complete": by_state((self.counted_share >= 1.0).astype(float)),
            "counties": by_state(np.ones(len(weight))),
        }

    def state_probabilities(self, post: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each state's P(Democrat carries it), and the mean and SD of its final share."""
        mean = post["offset"] + post["slope"] @ post["shared_mean"]
        spread = np.einsum("si,ij,sj->s", post["slope"], post["shared_covariance"], post["slope"])
        sd = np.sqrt(post["conditional_var"] + spread)
        return _probability_above_half(mean, sd), mean, sd

    def electoral_votes(self, post: dict[str, Any]) -> np.ndarray:
        """The distribution of the Democratic candidate's electoral votes (index = votes): the shared errors at
        fixed quasi-random draws, the states independent at each draw and their votes convolved exactly.

        A state every draw gives to the same side only shifts the distribution, so only the others are convolved,
        over the votes reached so far (most of the night, most states are settled)."""
        shared = post["shared_mean"] + self._draws @ np.linalg.cholesky(post["shared_covariance"]).T
        mean = post["offset"][None, :] + shared @ post["slope"].T
        p = _probability_above_half(mean, np.sqrt(post["conditional_var"])[None, :])
        settled_dem = np.all(p == 1.0, axis=0)
        open_states = np.flatnonzero(~settled_dem & ~np.all(p == 0.0, axis=0))
        distribution = np.ones((len(shared), 1))
        for state in open_states:
            votes = self._ev[state]
            grown = np.zeros((len(shared), distribution.shape[1] + votes))
            grown[:, : distribution.shape[1]] = distribution * (1.0 - p[:, state : state + 1])
            grown[:, votes:] += distribution * p[:, state : state + 1]
            distribution = grown
        result = np.zeros(int(self._ev.sum()) + 1)
        sure = int(self._ev[settled_dem].sum())
        result[sure : sure + distribution.shape[1]] = distribution.mean(axis=0)
        return result

    def snapshot(self, last_sequence: int) -> tuple[NationalLive, list[StateLive]]:
        """The estimate now, with any new calls made (a call is never withdrawn)."""
        post = self.posterior()
        p_dem, mean, sd = self.state_probabilities(post)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        records = []
        for s, state in enumerate(self.states):
            leader, p_leader = ("D", p_dem[s]) if p_dem[s] >= 0.5 else ("R", 1.0 - p_dem[s])
            if state not in self.calls and p_leader >= self.call_probability and post["reported"][s] > 0:
                self.calls[state] = StateCall(
                    winner=leader,
                    probability=float(p_leader),
                    counted_share=float(post["counted_votes"][s] / max(post["final_votes"][s], 1.0)),
                    counted_votes=int(post["counted_votes"][s]),
                    messages_applied=self.messages_applied,
                    reported_at=self._latest_report.get(state, ""),
                )
            call = self.calls.get(state)
            counted = post["counted_votes"][s]
            records.append(
                StateLive(
                    year=self.prior.year,
                    state_po=state,
                    electoral_votes=int(self._ev[s]),
                    p_dem=float(p_dem[s]),
                    expected_dem_share=float(mean[s]),
                    dem_share_sd=float(sd[s]),
                    counted_dem_share=float(post["counted_dem"][s] / counted) if counted > 0 else None,
                    counted_votes=int(counted),
                    expected_votes=float(post["final_votes"][s]),
                    counties_reported=int(post["reported"][s]),
                    counties_complete=int(post["complete"][s]),
                    counties=int(post["counties"][s]),
                    call=None if call is None else call.__dict__.copy(),
                    updated_at=now,
                )
            )
        distribution = self.electoral_votes(post)
        cumulative = np.cumsum(distribution)
        votes = self.prior.electoral_votes
        called = {side: sum(votes[state] for state, call in self.calls.items() if call.winner == side)
                  for side in ("D", "R")}  # fmt: skip
        national = NationalLive(
            year=self.prior.year,
            p_dem=float(np.clip(distribution[WINNING_ELECTORAL_VOTES:].sum(), 0.0, 1.0)),
            dem_electoral_votes_median=int(np.searchsorted(cumulative, 0.5)),
            dem_electoral_votes_low=int(np.searchsorted(cumulative, 0.1)),
            dem_electoral_votes_high=int(np.searchsorted(cumulative, 0.9)),
            dem_electoral_votes_called=called["D"],
            rep_electoral_votes_called=called["R"],
            states_called=len(self.calls),
            national_swing_mean=float(post["national_mean"]),
            national_swing_sd=float(post["national_sd"]),
            counted_votes=int(post["counted_votes"].sum()),
            expected_votes=float(post["final_votes"].sum()),
            messages_applied=self.messages_applied,
            duplicates=self.duplicates,
            dead_lettered=self.dead_lettered,
            last_sequence=int(last_sequence),
            updated_at=now,
        )
        return national, records


def _probability_above_half(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(share > 0.5) for normal shares; a share known exactly (sd 0) is 1, 0, or 0.5 on an exact tie."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean - 0.5) / sd
    exact = np.sign(mean - 0.5) * 0.5 + 0.5
    return np.where(sd > 0, ndtr(np.where(sd > 0, z, 0.0)), exact)
