"""Real mode's features, forecaster, backtest and simulation on the shipped data: no leakage, walk-forward
training, the acceptance rule against the baselines, and the outputs ``make real`` promises."""

import importlib.util
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from election_assets.core.compiled_model import SwingModel, load_compiled_model, save_compiled_model
from election_assets.core.real_features import REAL_INPUT_FIELD_NAMES, STATE_SWING, normal_cdf, real_model_features
from election_assets.modelling.export import compile_swing_model
from election_assets.real.backtest import (
    BACKTEST_YEARS,
    FORECASTER,
    GAIN_LEVEL,
    MARGIN_LOGISTIC,
    PERSISTENCE,
    backtest_markdown,
    backtest_year,
    beats_baselines,
    format_gain,
    pooled_vote_weighted_gain,
    state_calibration,
    state_calibration_markdown,
    training_rows,
    vote_weighted_gain,
)
from election_assets.real.campaign import CampaignModel, forecast_as_of
from election_assets.real.evaluation import CALIBRATION_BINS, electoral_votes, simulate_states
from election_assets.real.features import (
    FEATURE_YEARS,
    KNOWN_BEFORE_COLUMNS,
    NEXT_ELECTION,
    ElectionInputs,
    choose_poll_weighting,
    election_day,
    forecast_day,
    poll_errors,
    poll_estimate,
    state_shares,
)
from election_assets.real.forecaster import (
    DEFAULT_VARIANT,
    RELATIVE_SWING_VARIANTS,
    NoiseModel,
    PollNoiseCurve,
    fit_forecaster,
    predict_share,
)
from election_assets.real.poll_average import (
    DEFAULT_WEIGHTING,
    POLL_WEIGHTINGS,
    WINDOW_DAYS,
    PollWeighting,
    estimate,
)

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def figures():
    """scripts/real_model_figures.py, which writes the figures docs/real-mode.md quotes into docs/generated/."""
    return _script("real_model_figures")


def _assert_committed(path: Path, rendered: str, figures) -> None:
    """The committed generated file is what the code computes now."""
    assert path.read_text() == rendered, (
        f"{path.relative_to(ROOT)} no longer matches the figures the code computes: regenerate it with "
        f"`{figures.COMMAND}` and commit it"
    )


@pytest.fixture(scope="module")
def inputs() -> ElectionInputs:
    return ElectionInputs.read()


def _features(inputs: ElectionInputs, year: int, **replaced: pd.DataFrame) -> pd.DataFrame:
    return replace(inputs, **replaced).features(year).frame


@pytest.fixture(scope="module")
def features_by_year(inputs) -> dict[int, pd.DataFrame]:
    return inputs.features_by_year()


def test_counties_that_cannot_be_joined_are_counted_not_dropped_silently(inputs):
    # Broomfield, CO (08014) was created in 2001: in 2004 it has an outcome but no previous result to forecast
    # from; in 2008 it has a previous result but none two elections back, which counts as no change.
    first = inputs.features(2004)
    assert first.counts["new_units_without_previous_result"] == 1
    assert "08014" not in set(first.frame["county_fips"])
    second = inputs.features(2008)
    assert second.counts["missing_prev2_dem_share"] == 1 and "new_units_without_previous_result" not in second.counts
    broomfield = second.frame.set_index("county_fips").loc["08014"]
    assert broomfield["prev2_dem_share"] == broomfield["prev_dem_share"] and broomfield["prev_swing"] == 0.0
    # The next election has no outcome yet: every county is kept and nothing is counted as unjoined.
    upcoming = inputs.features(NEXT_ELECTION)
    assert len(upcoming.frame) == len(second.frame) and "units_without_outcome" not in upcoming.counts


KNOWN_BEFORE = list(KNOWN_BEFORE_COLUMNS)


@pytest.mark.parametrize("year", [2012, 2016, 2020])
def test_no_feature_of_a_year_reads_that_years_results(inputs, year):
    """Scramble the year's own county and state results: every feature must stay exactly the same."""
    rng = np.random.default_rng(year)

    def scrambled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        current = frame["year"] == year
        for column in ("dem_votes", "rep_votes"):
            frame.loc[current, column] = rng.integers(1, 1_000_000, current.sum())
        return frame

    honest = _features(inputs, year)
    leaked = _features(
        inputs, year, county_returns=scrambled(inputs.county_returns), state_returns=scrambled(inputs.state_returns)
    )
    pd.testing.assert_frame_equal(honest[KNOWN_BEFORE], leaked[KNOWN_BEFORE])
    assert not np.allclose(honest["outcome_dem_share"], leaked["outcome_dem_share"])


def test_polls_from_the_as_of_day_on_and_demographics_of_the_year_itself_are_ignored(inputs):
    year = 2016
    # Ten lopsided polls of Ohio whose field period ended on the forecast day itself, or on election day.
    ends = [forecast_day(year)] * 5 + [election_day(year)] * 5
    late_polls = pd.DataFrame(
        {
            "year": year,
            "geography": "OH",
            "start_date": pd.NaT,
            "end_date": pd.to_datetime(ends),
            "median_date": pd.to_datetime(ends),
            "pollster": "after the fact",
            "population": "lv",
            "sample_size": 1000,
            "dem_share": 0.99,
            "source": "fivethirtyeight",
            "source_poll_id": [f"late-{i}" for i in range(10)],
        }
    ).astype(inputs.polls.dtypes.to_dict())
    same_year = inputs.demographics[inputs.demographics["as_of_year"] < year]
    future = same_year.assign(as_of_year=year, value=same_year["value"] * 3 + 7)
    honest = _features(inputs, year)
    leaked = _features(
        inputs,
        year,
        polls=pd.concat([inputs.polls, late_polls], ignore_index=True),
        demographics=pd.concat([inputs.demographics, future], ignore_index=True),
    )
    pd.testing.assert_frame_equal(honest[KNOWN_BEFORE], leaked[KNOWN_BEFORE])


def test_election_day_is_the_tuesday_after_the_first_monday_of_november():
    assert [election_day(y) for y in (2008, 2012, 2016, 2020, 2024)] == [
        date(2008, 11, 4),
        date(2012, 11, 6),
        date(2016, 11, 8),
        date(2020, 11, 3),
        date(2024, 11, 5),
    ]


def _poll(geography: str, age: int, share: float, sample: int = 600) -> dict:
    """A poll of 2012 whose field period ended ``age`` days before the as-of day."""
    end = pd.Timestamp(forecast_day(2012)) - pd.Timedelta(days=age)
    return {"year": 2012, "geography": geography, "end_date": end, "median_date": end, "sample_size": sample,
            "dem_share": share}  # fmt: skip


PREVIOUS = pd.Series({"OH": 0.50, "WY": 0.30, "VT": 0.65})


def _estimate(*polls: dict, weighting: PollWeighting = DEFAULT_WEIGHTING):
    return estimate(
        pd.DataFrame(polls), 2012, pd.Timestamp(forecast_day(2012)), PREVIOUS, national_previous=0.52,
        weighting=weighting,
    )  # fmt: skip


@pytest.mark.parametrize("weighting", [DEFAULT_WEIGHTING, PollWeighting(half_life_days=7.0, prior_polls=0.5)])
def test_the_poll_estimate_moves_states_by_their_own_polls_shrunk_towards_the_national_swing(weighting):
    national = _poll("US", 1, 0.54)  # the nation moved +2 points since last time
    estimate_ = _estimate(national, *[_poll("OH", 1, 0.56) for _ in range(20)], weighting=weighting)
    assert estimate_.national_swing == pytest.approx((0.02 + 20 * 0.06) / 21)
    # Ohio's twenty polls outweigh the prior; Wyoming, never polled, moves with the nation.
    assert estimate_.state_share["OH"] == pytest.approx(0.56, abs=0.005)
    assert estimate_.state_share["WY"] == pytest.approx(0.30 + estimate_.national_swing)
    one_poll = _estimate(national, _poll("OH", 1, 0.56), weighting=weighting)
    weight = 0.5 ** (1 / weighting.half_life_days)  # a day old
    prior = weighting.prior_polls
    shrunk = (weight * 0.06 + prior * one_poll.national_swing) / (weight + prior)
    assert one_poll.state_share["OH"] == pytest.approx(0.50 + shrunk)


def test_older_and_smaller_polls_weigh_less_and_polls_outside_the_window_none():
    fresh, old = _poll("US", 1, 0.54), _poll("US", 1 + int(DEFAULT_WEIGHTING.half_life_days), 0.50)
    assert _estimate(fresh, old).national_swing == pytest.approx((0.02 * 1 + -0.02 * 0.5) / 1.5)
    small = _poll("US", 1, 0.50, sample=150)
    assert _estimate(fresh, small).national_swing == pytest.approx((0.02 * 1 + -0.02 * 0.5) / 1.5)
    assert _estimate(fresh, _poll("US", WINDOW_DAYS + 1, 0.10)).national_swing == pytest.approx(0.02)


def test_a_poll_counts_only_once_its_field_period_ended_before_the_as_of_day():
    on_the_day = _poll("OH", 0, 0.99)
    assert not _estimate(on_the_day).has_polls
    assert _estimate(_poll("OH", 1, 0.99)).has_polls


def test_every_state_has_a_poll_estimate_in_a_year_with_polls_and_none_before_the_first_poll(inputs):
    for year in FEATURE_YEARS:
        frame = inputs.features(year).frame
        assert frame["poll_dem_share"].notna().all(), year
    summer = inputs.features(2020, as_of=date(2020, 1, 1)).frame  # before any poll of the file
    assert summer["poll_dem_share"].isna().all() and (summer[STATE_SWING] == 0).all()


def test_every_election_has_the_features_the_next_one_is_forecast_from(features_by_year):
    assert set(features_by_year) == {2004, 2008, 2012, 2016, 2020, NEXT_ELECTION}
    assert "outcome_dem_share" not in features_by_year[NEXT_ELECTION]
    for year, frame in features_by_year.items():
        assert frame["county_fips"].str.fullmatch(r"\d{5}").all()
        assert frame["county_fips"].is_unique
        assert frame["prev_dem_share"].between(0, 1).all(), year
        assert len(frame) > 3_000


def test_training_rows_come_only_from_earlier_elections(features_by_year):
    for year in BACKTEST_YEARS:
        assert training_rows(features_by_year, before=year)["year"].max() == year - 4
    with pytest.raises(ValueError, match="no labelled elections before 2004"):
        training_rows(features_by_year, before=2004)


def test_training_rows_are_in_year_order_whatever_order_the_partitions_come_in(features_by_year):
    """Dagster hands a multi-partition input over in no set order; the rows (and so the trees' subsampling) must
    not depend on it."""
    backwards = dict(sorted(features_by_year.items(), reverse=True))
    assert training_rows(backwards, before=2016).equals(training_rows(features_by_year, before=2016))
    assert list(training_rows(backwards, before=2016)["year"].unique()) == [2004, 2008, 2012]


@pytest.fixture(scope="module")
def weighting_2016(inputs) -> PollWeighting:
    """The poll weighting of the 2016 forecast: the one its features were built with."""
    return inputs.features(2016).weighting.chosen


@pytest.fixture(scope="module")
def poll_error_table(inputs, weighting_2016) -> pd.DataFrame:
    return poll_errors(inputs.polls, inputs.state_returns, weighting_2016)


@pytest.fixture(scope="module")
def backtests(inputs, features_by_year):
    return {year: backtest_year(features_by_year, year, inputs.polls, inputs.state_returns) for year in BACKTEST_YEARS}


@pytest.mark.parametrize("year", BACKTEST_YEARS)
def test_the_forecaster_beats_both_baselines_on_brier_and_log_loss(backtests, year):
    verdict = beats_baselines(backtests[year].scores)
    assert verdict["brier"] and verdict["log_loss"], backtests[year].scores


@pytest.mark.parametrize("year", BACKTEST_YEARS)
def test_vote_weighted_accuracy_is_never_significantly_worse_than_persistence(backtests, year):
    # The upper end of the 95 % state-bootstrap interval of the gain over persistence is above zero.
    gain = backtests[year].scores.loc[FORECASTER, ["vw_gain", "vw_gain_low", "vw_gain_high"]]
    assert beats_baselines(backtests[year].scores)["vote_weighted_accuracy_not_significantly_worse"], gain


def test_pooled_over_every_backtest_year_the_vote_weighted_accuracy_is_at_least_persistences(backtests):
    pooled = pooled_vote_weighted_gain({year: result.scores for year, result in backtests.items()}, BACKTEST_YEARS)
    assert pooled["vw_gain"] >= 0, pooled


def test_the_gain_over_persistence_is_the_difference_of_their_vote_weighted_accuracies(backtests):
    for result in backtests.values():
        forecaster, persistence = result.scores_for(FORECASTER), result.scores_for(PERSISTENCE)
        gain = forecaster["vote_weighted_accuracy"] - persistence["vote_weighted_accuracy"]
        assert forecaster["vw_gain"] == pytest.approx(gain, abs=1e-12)
        assert forecaster["vw_gain_low"] <= forecaster["vw_gain"] <= forecaster["vw_gain_high"]
        assert forecaster["votes"] == result.counties["outcome_total_votes"].sum()


def _counties(states: list[str], votes: list[int], won: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"state_po": states, "outcome_total_votes": votes, "outcome_dem_win": won})


def test_the_vote_weighted_gain_counts_the_votes_of_the_counties_only_one_model_called_right():
    counties = _counties(["AA", "AA", "BB", "BB"], [100, 300, 400, 200], [1, 0, 1, 0])
    model = np.array([0.9, 0.2, 0.8, 0.6])  # wrong on the last county (200 votes)
    baseline = np.array([0.9, 0.7, 0.3, 0.4])  # wrong on the second and third (700 votes)
    gain = vote_weighted_gain(counties, model, baseline, resamples=500)
    assert gain["vw_gain"] == pytest.approx((700 - 200) / 1000)
    assert gain["votes"] == 1000
    unchanged = vote_weighted_gain(counties, model, model, resamples=500)
    assert unchanged["vw_gain"] == unchanged["vw_gain_low"] == unchanged["vw_gain_high"] == 0.0


def test_the_gain_interval_resamples_whole_states_not_counties():
    # One state: every resample of states is the same state, so the interval has no width, however its counties
    # disagree. A county bootstrap would give it one.
    counties = _counties(["AA"] * 4, [100, 200, 300, 400], [1, 1, 0, 0])
    model, baseline = np.array([0.9, 0.1, 0.1, 0.9]), np.array([0.1, 0.9, 0.9, 0.1])
    gain = vote_weighted_gain(counties, model, baseline, resamples=500)
    assert (
        gain["vw_gain_low"] == gain["vw_gain"] == gain["vw_gain_high"] == pytest.approx((100 + 300 - 200 - 400) / 1000)
    )
    assert gain["vw_gain_se"] == pytest.approx(0.0, abs=1e-15)
    # Ten states that each favour one model: the interval now has width and holds the estimate.
    many = _counties([f"S{i}" for i in range(10)], [100] * 10, [1] * 10)
    spread = vote_weighted_gain(many, np.array([0.9] * 6 + [0.1] * 4), np.full(10, 0.4), resamples=2000)
    assert spread["vw_gain"] == pytest.approx(0.6)
    assert spread["vw_gain_low"] < 0.6 < spread["vw_gain_high"] and spread["vw_gain_se"] > 0


def test_the_pooled_gain_weights_each_year_by_its_votes_and_combines_independent_errors():
    def year(gain: float, se: float, votes: float) -> pd.DataFrame:
        return pd.DataFrame({"vw_gain": [gain], "vw_gain_se": [se], "votes": [votes]}, index=[FORECASTER])

    pooled = pooled_vote_weighted_gain({2012: year(0.02, 0.01, 100.0), 2016: year(-0.01, 0.02, 300.0)}, (2012, 2016))
    assert pooled["vw_gain"] == pytest.approx(0.25 * 0.02 + 0.75 * -0.01)
    half_width = 1.959964 * np.sqrt((0.25 * 0.01) ** 2 + (0.75 * 0.02) ** 2)
    assert GAIN_LEVEL == 0.95
    assert pooled["vw_gain_high"] - pooled["vw_gain"] == pytest.approx(half_width, rel=1e-5)
    assert pooled["vw_gain"] - pooled["vw_gain_low"] == pytest.approx(half_width, rel=1e-5)


@pytest.fixture(scope="module")
def backtest_document(
    inputs, backtests, features_by_year, figures
) -> tuple[dict[int, pd.DataFrame], pd.DataFrame, str]:
    scores = {year: result.scores for year, result in backtests.items()}
    states = figures.state_forecasts(inputs, backtests)
    early = figures.early_backtests(inputs, features_by_year)
    published = figures.next_election_forecaster(inputs, features_by_year)
    return scores, states, figures.backtest_document(backtests, published, states, early)


def test_the_generated_backtest_table_is_the_one_the_code_renders(backtest_document, figures):
    scores, _, rendered = backtest_document
    assert backtest_markdown(scores) in rendered
    _assert_committed(figures.BACKTEST_FILE, rendered, figures)


def test_the_generated_pooled_gains_are_the_ones_the_code_computes(backtest_document):
    scores, _, rendered = backtest_document
    assert f"| 2008-2020 | {format_gain(pooled_vote_weighted_gain(scores, BACKTEST_YEARS))} |" in rendered


def test_the_pooled_state_calibration_counts_every_state_of_every_year(backtest_document):
    _, states, rendered = backtest_document
    table = state_calibration(states)
    assert table["count"].sum() == 51 * len(BACKTEST_YEARS) == len(states)
    assert state_calibration_markdown(table) in rendered
    # Confident calls are right: the Democrat carried no state given under 10 % and every state given over 90 %.
    assert table.loc[0, "observed"] == 0.0 and table.loc[CALIBRATION_BINS - 1, "observed"] == 1.0


def test_the_backtest_scores_every_county_and_state_of_the_test_year(backtests, features_by_year):
    for year, result in backtests.items():
        assert set(result.scores.index) == {FORECASTER, PERSISTENCE, MARGIN_LOGISTIC}
        assert len(result.counties) == len(features_by_year[year])
        assert result.scores.loc[FORECASTER, "states"] == 51
        assert 0 <= result.scores.loc[FORECASTER, "states_right"] <= 51
        for curve in result.calibration.values():
            assert curve["count"].sum() == len(result.counties)


def test_the_noise_model_recovers_national_state_and_county_spreads():
    rng = np.random.default_rng(0)
    years, states, counties = 40, 30, 60
    national = rng.normal(0, 0.02, years)
    state = rng.normal(0, 0.03, (years, states))
    rows = [
        {"year": y, "state_po": f"S{s}", "residual": national[y] + state[y, s] + e, "weight": 1.0}
        for y in range(years)
        for s in range(states)
        for e in rng.normal(0, 0.04, counties)
    ]
    noise = NoiseModel.from_residuals(pd.DataFrame(rows), source="synthetic")
    assert noise.national == pytest.approx(0.02, rel=0.3)
    assert noise.state == pytest.approx(0.03, rel=0.15)
    assert noise.county == pytest.approx(0.04, rel=0.05)


def test_without_noise_the_simulation_calls_each_state_by_its_vote_weighted_share():
    frame = pd.DataFrame({"state_po": ["AA", "AA", "BB"], "log_prev_votes": np.log([100.0, 300.0, 50.0])})
    share = np.array([0.9, 0.4, 0.45])  # AA: (90 + 120) / 400 = 0.525
    simulation = simulate_states(frame, share, NoiseModel(0.0, 0.0, 0.0, "none"), draws=10)
    assert simulation.expected_share["AA"] == pytest.approx(0.525)
    assert simulation.win_probability.to_dict() == {"AA": 1.0, "BB": 0.0}


def test_apportionment_tables_have_538_votes_and_follow_the_census():
    assert electoral_votes(2008)["TX"] == 34 and electoral_votes(2020)["TX"] == 38 and electoral_votes(2024)["TX"] == 40
    assert len(electoral_votes(2024)) == 51


@pytest.mark.parametrize("variant", RELATIVE_SWING_VARIANTS)
def test_the_compiled_model_reproduces_each_relative_swing_variant_after_a_round_trip_through_npz(
    variant, features_by_year, tmp_path
):
    relative_swing = RELATIVE_SWING_VARIANTS[variant](training_rows(features_by_year, before=2012))
    counties = features_by_year[2012]
    compiled = compile_swing_model(relative_swing, sigma_polled=0.04, sigma_unpolled=0.06)
    save_compiled_model(compiled, tmp_path / "model.npz")
    loaded = load_compiled_model(tmp_path / "model.npz")
    assert isinstance(loaded, SwingModel)
    columns = real_model_features(counties[list(REAL_INPUT_FIELD_NAMES)].to_numpy())
    share = predict_share(relative_swing, counties)
    # XGBoost predicts in float32; the compiled trees sum in float64.
    assert loaded.predict_share(columns) == pytest.approx(share, abs=1e-6)
    assert loaded.predict_proba_a(columns) == pytest.approx(normal_cdf((share - 0.5) / 0.04), abs=1e-5)
    explanation = loaded.explain(columns[:20])
    assert explanation.space == "share"
    assert explanation.bias + explanation.contributions.sum(axis=1) == pytest.approx(
        loaded.predict_share(columns[:20]), abs=1e-9
    )


def test_the_relative_swing_is_the_variant_with_the_lowest_walk_forward_brier_score(backtests):
    for year, result in backtests.items():
        choice = result.forecaster.variant
        assert choice.validated_on == tuple(y for y in result.training_years[1:]), year
        if choice.scores.empty:  # 2008: one training election, the default
            assert (year, choice.chosen) == (2008, DEFAULT_VARIANT)
            continue
        assert set(choice.scores.index) == set(RELATIVE_SWING_VARIANTS)
        assert choice.scores["brier"].idxmin() == choice.chosen, choice.scores


def test_the_poll_error_is_each_states_result_minus_its_poll_average_as_far_out_as_the_forecast(
    inputs, poll_error_table
):
    day_before = poll_error_table[poll_error_table["days_before"] == 1]
    assert sorted(day_before["year"].unique()) == [2000, 2004, 2008, 2012, 2016, 2020]
    assert day_before.groupby("year").size().eq(51).all()
    # The 2000, 2004 and 2020 polls cover the last three weeks only: no error for them eight weeks out.
    eight_weeks = poll_error_table[poll_error_table["days_before"] == 56]
    assert sorted(eight_weeks["year"].unique()) == [2008, 2012, 2016]
    result = state_shares(inputs.state_returns, 2016)
    for days in (1, 56):
        errors = poll_error_table[(poll_error_table["year"] == 2016) & (poll_error_table["days_before"] == days)]
        polls = inputs.features(2016, as_of=election_day(2016) - timedelta(days=days)).polls
        error = errors.set_index("state_po").loc["PA", "residual"]
        assert error == pytest.approx(result["PA"] - polls.state_share["PA"])


def _before(table: pd.DataFrame, year: int) -> pd.DataFrame:
    return table[table["year"] < year]


def test_the_poll_weighting_is_the_one_whose_earlier_state_averages_missed_least(inputs):
    choice = choose_poll_weighting(inputs.polls, inputs.state_returns, before=2016)
    assert choice.validated_on == (2000, 2004, 2008, 2012)
    assert set(choice.scores) == set(POLL_WEIGHTINGS) and DEFAULT_WEIGHTING in POLL_WEIGHTINGS
    assert choice.scores[choice.chosen] == min(choice.scores.values())
    # The score: root mean square of every state's day-before error over those elections, DC included.
    errors = poll_errors(inputs.polls, inputs.state_returns, choice.chosen, horizons=(1,))
    earlier = _before(errors, 2016)["residual"]
    assert len(earlier) == 4 * 51
    assert choice.scores[choice.chosen] == pytest.approx(float(np.sqrt(np.mean(earlier**2))))
    assert choice.reason.startswith(f"{choice.chosen.label}: the smallest error") and "2000, 2004, 2008, 2012" in (
        choice.reason
    )


def test_a_poll_weighting_round_trips_through_a_manifests_hyperparameters_and_a_model_without_one_is_refused():
    weighting = PollWeighting(half_life_days=7.0, prior_polls=0.5)
    assert PollWeighting.from_params({"relative_swing": "ridge", **weighting.params()}) == weighting
    with pytest.raises(ValueError, match=r"poll_half_life_days, poll_prior_polls missing .* publish it again"):
        PollWeighting.from_params({"relative_swing": "ridge", "alpha": 1.0})


def test_the_poll_weighting_reads_no_poll_and_no_result_of_its_year_or_later(inputs):
    later_polls, later_results = inputs.polls["year"] >= 2012, inputs.state_returns["year"] >= 2012
    polls = inputs.polls.assign(dem_share=inputs.polls["dem_share"].where(~later_polls, 0.1))
    results = inputs.state_returns.assign(rep_votes=inputs.state_returns["rep_votes"].where(~later_results, 1))
    assert choose_poll_weighting(polls, results, before=2012) == choose_poll_weighting(
        inputs.polls, inputs.state_returns, before=2012
    )


def test_without_an_earlier_election_with_polls_the_weighting_is_the_default(inputs):
    choice = choose_poll_weighting(inputs.polls, inputs.state_returns, before=2000)
    assert (choice.chosen, choice.validated_on) == (DEFAULT_WEIGHTING, ())
    assert "the default, no earlier election with polls" in choice.reason


def test_an_elections_poll_column_is_the_average_weighed_as_chosen_before_it(inputs):
    built = inputs.features(2012)
    assert built.weighting == choose_poll_weighting(inputs.polls, inputs.state_returns, before=2012)
    expected = poll_estimate(inputs.polls, inputs.state_returns, 2012, forecast_day(2012), built.weighting.chosen)
    poll_column = built.frame.set_index("county_fips")["poll_dem_share"]
    assert poll_column.equals(built.frame.set_index("county_fips")["state_po"].map(expected.state_share))


def test_the_polls_error_parts_never_shrink_further_out_and_a_horizon_without_polls_takes_the_nearer_ones():
    rng = np.random.default_rng(0)
    rows = []
    for year, days, spread in ((2000, 1, 0.02), (2004, 1, 0.02), (2008, 1, 0.01), (2008, 14, 0.005), (2012, 14, 0.5)):
        national = rng.normal(0.0, spread)
        rows += [
            {"days_before": days, "year": year, "state_po": f"S{i}", "residual": national + e, "weight": 1.0}
            for i, e in enumerate(rng.normal(0.0, spread, 20))
        ]
    errors = pd.DataFrame(rows)
    curve = PollNoiseCurve.from_poll_errors(errors, trained_through=2008)  # 2012's wild errors are not read
    day_before, two_weeks = curve.parts(1), curve.parts(14)
    assert (two_weeks["national"], two_weeks["state"]) == (day_before["national"], day_before["state"])
    assert curve.parts(7)["state"] == two_weeks["state"] and curve.parts(60)["state"] == two_weeks["state"]
    assert list(curve.table["elections"]) == [3, 1]
    with pytest.raises(ValueError, match="no poll errors of an election through 1996"):
        PollNoiseCurve.from_poll_errors(errors, trained_through=1996)


def test_a_forecaster_reads_no_poll_and_no_result_of_an_election_it_did_not_train_on(
    inputs, features_by_year, poll_error_table, weighting_2016
):
    """The polls and state results of the forecast year and later: perturbing them changes nothing."""
    train = training_rows(features_by_year, before=2016)
    later_polls, later_results = inputs.polls["year"] >= 2016, inputs.state_returns["year"] >= 2016
    polls = inputs.polls.assign(dem_share=inputs.polls["dem_share"].where(~later_polls, 0.9))
    results = inputs.state_returns.assign(dem_votes=inputs.state_returns["dem_votes"].where(~later_results, 1))
    before = fit_forecaster(train, inputs.polls, inputs.state_returns)
    after = fit_forecaster(train, polls, results)
    assert after.polled_noise == before.polled_noise and after.variant.chosen == before.variant.chosen
    assert after.poll_noise.table.equals(before.poll_noise.table)
    assert after.poll_weighting == before.poll_weighting and before.poll_weighting.chosen == weighting_2016
    later = poll_error_table["year"] >= 2016
    known = poll_error_table[~later & (poll_error_table["days_before"] == 1)]
    expected = NoiseModel.from_residuals(known, source="")
    assert (before.polled_noise.national, before.polled_noise.state) == pytest.approx(
        (expected.national, expected.state)
    )
    assert before.polled_noise.source.startswith("poll errors of 4 elections through 2012 (national, state)")


def test_a_forecast_further_from_the_election_has_the_wider_errors_and_the_last_one_is_the_apis(
    inputs, backtests, features_by_year, poll_error_table
):
    forecaster = backtests[2016].forecaster
    campaign_model = CampaignModel.of_forecaster(forecaster)
    model = campaign_model.model
    counties = features_by_year[2016]

    def as_of(day):
        return forecast_as_of(campaign_model, counties, inputs.polls, inputs.state_returns, day, year=2016)

    last, early = as_of(forecast_day(2016)), as_of(election_day(2016) - timedelta(days=56))
    assert last.noise.national == forecaster.polled_noise.national and last.noise.state == forecaster.polled_noise.state
    columns = real_model_features(counties[list(REAL_INPUT_FIELD_NAMES)].to_numpy())
    assert last.counties["p_candidate_a"].to_numpy() == pytest.approx(model.predict_proba_a(columns), abs=1e-12)
    assert early.noise.national > last.noise.national and early.noise.state > last.noise.state
    assert early.summary["error_sd_state"] == early.noise.state


def test_the_generated_figures_of_the_model_variants_are_the_ones_the_script_prints(features_by_year, figures):
    variants = figures.load_variants()
    backtest_rows = variants.backtest_rows(features_by_year)
    walk_forward = variants.walk_forward_inside_training(features_by_year)
    _assert_committed(figures.VARIANTS_FILE, figures.variants_document(backtest_rows, walk_forward), figures)
