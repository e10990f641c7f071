"""The live estimate's maths, its call rule, idempotence and every dead-letter reason, on hand-built priors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from election_assets.core.live import DEAD_LETTER_REASONS
from election_assets.core.manifest import NoiseParts
from election_assets.live.estimate import DeadLetter, LiveEstimate, parse_message
from election_assets.live.prior import ElectionNightPrior, PriorError, new_manifest

YEAR = 2016
NATIONAL, STATE, COVARIATE_SD, TAU = 0.02, 0.03, 0.015, 0.05
# Two counties in Delaware, one in Rhode Island; one covariate (the realignment).
FIPS, STATES = ("10001", "10003", "44001"), ("DE", "DE", "RI")
PRIOR_SHARE = np.array([0.52, 0.48, 0.55])
EXPECTED_VOTES = np.array([1000.0, 3000.0, 2000.0])
COUNTY_SD = np.array([0.04, 0.02, 0.03])
COVARIATE = np.array([1.0, -0.5, 0.25])


def hand_prior() -> ElectionNightPrior:
    return ElectionNightPrior(
        manifest=new_manifest(YEAR, "hand-built", YEAR - 4),
        noise=NoiseParts(national=NATIONAL, state=STATE, county=0.03, source="hand-built"),
        electoral_votes={"DE": 3, "RI": 4},
        county_fips=FIPS,
        state_po=STATES,
        county_name=("Kent", "New Castle", "Bristol"),
        expected_dem_share=PRIOR_SHARE,
        expected_votes=EXPECTED_VOTES,
        county_sd=COUNTY_SD,
        covariate_names=("x",),
        covariates=COVARIATE[:, None],
        realignment_sd=np.array([COVARIATE_SD]),
    )


def report(county: int, dem: int, rep: int, counted_share: float, step: int = 1, **changes) -> dict:
    complete = counted_share == 1.0
    message = {
        "message_id": f"{YEAR}-{FIPS[county]}-{step}",
        "year": YEAR,
        "state_po": STATES[county],
        "county_fips": FIPS[county],
        "county_name": "County",
        "step": step,
        "steps": 3,
        "dem_votes": dem,
        "rep_votes": rep,
        "total_votes": dem + rep,
        "counted_share": counted_share,
        "status": "complete" if complete else "partial",
        "reported_at": "2016-11-08T20:05:00-05:00",
    }
    return message | changes


def test_the_posterior_is_the_exact_gaussian_conditional():
    """Delaware's first county complete, its second half counted, Rhode Island not in: the estimate's state
    shares equal a dense Gaussian conditioning of every latent error on the two reports."""
    estimate = LiveEstimate(hand_prior(), partial_count_sd=TAU)
    estimate.apply(report(0, 560, 440, 1.0, step=3))
    estimate.apply(report(1, 700, 800, 0.5))
    post = estimate.posterior()
    _, mean, sd = estimate.state_probabilities(post)

    # Latent x = (national, realignment, state DE, state RI, county 1, 2, 3, counting order of county 2).
    variances = np.array([NATIONAL, COVARIATE_SD, STATE, STATE, *COUNTY_SD, TAU * np.sqrt(0.5 / 0.5)]) ** 2

    def county_loading(c: int) -> np.ndarray:
        row = np.zeros(8)
        row[[0, 1, 2 + (STATES[c] == "RI"), 4 + c]] = [1.0, COVARIATE[c], 1.0, 1.0]
        return row

    observed = np.array([county_loading(0), county_loading(1) + np.eye(8)[7]])
    surprise = np.array([0.56 - PRIOR_SHARE[0], 700 / 1500 - PRIOR_SHARE[1]])
    prior_cov = np.diag(variances)
    gain = prior_cov @ observed.T @ np.linalg.inv(observed @ prior_cov @ observed.T)
    post_mean = gain @ surprise
    post_cov = prior_cov - gain @ observed @ prior_cov

    # Delaware's final share: county 1 as counted (1,000 votes), county 2 with its 1,500 counted of 3,000 expected.
    weights = np.array([1000.0, 3000.0]) / 4000.0
    functional = weights[0] * county_loading(0) + weights[1] * county_loading(1)
    de_mean = weights @ PRIOR_SHARE[:2] + functional @ post_mean
    de_sd = np.sqrt(functional @ post_cov @ functional)
    # Rhode Island: its expected votes scaled by the turnout reported so far (4,000 final against 4,000 expected).
    ri_mean = PRIOR_SHARE[2] + county_loading(2) @ post_mean
    ri_sd = np.sqrt(county_loading(2) @ post_cov @ county_loading(2))

    de, ri = estimate.states.index("DE"), estimate.states.index("RI")
    assert mean[de] == pytest.approx(de_mean, abs=1e-12) and sd[de] == pytest.approx(de_sd, abs=1e-12)
    assert mean[ri] == pytest.approx(ri_mean, abs=1e-12) and sd[ri] == pytest.approx(ri_sd, abs=1e-12)
    assert post["national_mean"] == pytest.approx(post_mean[0], abs=1e-12)
    assert post["national_sd"] == pytest.approx(np.sqrt(post_cov[0, 0]), abs=1e-12)


def test_a_state_fully_counted_is_certain_and_the_electoral_votes_add_up():
    estimate = LiveEstimate(hand_prior())
    for county, (dem, rep) in enumerate([(560, 440), (1400, 1600), (900, 1100)]):
        estimate.apply(report(county, dem, rep, 1.0))
    p_dem, mean, sd = estimate.state_probabilities(estimate.posterior())
    assert mean[estimate.states.index("DE")] == pytest.approx((560 + 1400) / 4000)
    assert list(sd) == [0.0, 0.0] and list(p_dem) == [0.0, 0.0]
    distribution = estimate.electoral_votes(estimate.posterior())
    assert distribution[0] == pytest.approx(1.0) and distribution.sum() == pytest.approx(1.0)


def test_a_call_is_made_at_the_threshold_and_never_withdrawn():
    estimate = LiveEstimate(hand_prior(), call_probability=0.9)
    estimate.snapshot(0)
    assert estimate.calls == {}, "no call before any county of the state is in"
    estimate.apply(report(1, 2600, 400, 1.0))  # New Castle, complete, strongly Democratic
    national, states = estimate.snapshot(1)
    delaware = next(state for state in states if state.state_po == "DE")
    assert delaware.p_dem >= 0.9 and delaware.call["winner"] == "D"
    # 3,000 counted of 4,000 expected: Kent's 1,000 at the turnout New Castle reported (as expected).
    assert delaware.call["counted_votes"] == 3000 and delaware.call["counted_share"] == pytest.approx(0.75)
    assert national.states_called == 1 and national.dem_electoral_votes_called == 3
    estimate.apply(report(0, 10, 9990, 1.0))  # Kent, complete, overwhelmingly Republican: Delaware flips
    _, states = estimate.snapshot(2)
    delaware = next(state for state in states if state.state_po == "DE")
    assert delaware.p_dem < 0.5 and delaware.call["winner"] == "D", "a call stays made"


def test_a_redelivered_report_is_applied_once():
    estimate = LiveEstimate(hand_prior())
    message = report(0, 300, 200, 0.5)
    assert estimate.apply(message) is True
    before = estimate.posterior()
    assert estimate.apply(dict(message)) is False
    after = estimate.posterior()
    assert (estimate.messages_applied, estimate.duplicates) == (1, 1)
    assert after["offset"].tolist() == before["offset"].tolist()


BAD_MESSAGES = {
    "malformed_json": [b"{not json", b"[1, 2]"],
    "invalid_message": [
        json.dumps(report(0, -5, 10, 0.5)).encode(),
        json.dumps({k: v for k, v in report(0, 5, 10, 0.5).items() if k != "county_fips"}).encode(),
        json.dumps(report(0, 50, 60, 0.5, total_votes=100)).encode(),
    ],
    "unknown_county": [
        json.dumps(report(0, 5, 10, 0.5, county_fips="99999", message_id="2016-99999-1")).encode(),
        json.dumps(report(0, 5, 10, 0.5, state_po="RI", message_id="2016-10001-2", step=2)).encode(),
    ],
    "wrong_year": [json.dumps(report(0, 5, 10, 0.5, year=2012, message_id="2012-10001-1")).encode()],
    "count_decreased": [json.dumps(report(0, 100, 100, 0.4, step=2)).encode()],
}


@pytest.mark.parametrize(
    ("reason", "data"), [(reason, data) for reason, items in BAD_MESSAGES.items() for data in items]
)
def test_every_bad_message_is_a_dead_letter_with_its_reason(reason, data):
    estimate = LiveEstimate(hand_prior())
    estimate.apply(report(0, 300, 200, 0.5, step=1))
    with pytest.raises(DeadLetter) as caught:
        estimate.apply(parse_message(data))
    assert caught.value.reason == reason and caught.value.detail
    assert estimate.messages_applied == 1 and estimate.dem[0] == 300, "nothing of a dead letter is applied"


def test_the_dead_letter_reasons_are_all_tested():
    assert set(BAD_MESSAGES) == set(DEAD_LETTER_REASONS)


def test_a_schema_breach_names_the_field():
    with pytest.raises(DeadLetter, match="dem_votes"):
        parse_message(json.dumps(report(0, -5, 10, 0.5)).encode())


def test_the_prior_file_round_trips_and_refuses_an_edit(tmp_path):
    path = tmp_path / "prior_2016.json"
    prior = hand_prior()
    prior.write(path)
    again = ElectionNightPrior.read(path, YEAR)
    assert again.county_fips == prior.county_fips and np.allclose(again.covariates, prior.covariates)
    with pytest.raises(PriorError, match="not 2020"):
        ElectionNightPrior.read(path, 2020)
    path.write_text(path.read_text().replace("0.52", "0.62"))
    with pytest.raises(PriorError, match="SHA-256"):
        ElectionNightPrior.read(path, YEAR)


def test_the_electoral_votes_are_every_combination_of_state_outcomes_weighed():
    """Half of a small real night applied: the distribution equals the brute-force sum over all 2^4 outcomes of
    the four states at each draw of the shared errors (settled states are shortcuts, not approximations)."""
    from itertools import product

    from election_assets.live.estimate import _probability_above_half
    from election_assets.live.replay import load_county_returns, replay_messages
    from election_assets_tests.live_fixtures import small_prior

    returns = load_county_returns()
    returns = returns[returns["state_po"].isin(("DE", "RI", "HI", "VT"))]
    estimate = LiveEstimate(small_prior(returns, YEAR))
    messages = replay_messages(returns, YEAR)
    for message in messages[: len(messages) // 2]:
        estimate.apply(message)
    post = estimate.posterior()
    shared = post["shared_mean"] + estimate._draws @ np.linalg.cholesky(post["shared_covariance"]).T
    p = _probability_above_half(
        post["offset"][None, :] + shared @ post["slope"].T, np.sqrt(post["conditional_var"])[None, :]
    )
    expected = np.zeros(int(estimate._ev.sum()) + 1)
    for outcome in product((0, 1), repeat=len(estimate.states)):
        won = np.array(outcome, dtype=bool)
        expected[int(estimate._ev[won].sum())] += np.mean(np.prod(np.where(won, p, 1.0 - p), axis=1))
    assert np.abs(estimate.electoral_votes(post) - expected).max() < 1e-12
    assert np.any((p > 0.0) & (p < 1.0)), "some state is still open"
