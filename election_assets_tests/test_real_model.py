"""Real mode's features, forecaster, backtest and simulation on the shipped data: no leakage, walk-forward
training, the acceptance rule against the baselines, and the outputs ``make real`` promises."""

import importlib.util
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from election_assets.core.compiled_model import SwingModel, load_compiled_model, save_compiled_model
from election_assets.core.real_features import REAL_INPUT_FIELD_NAMES, STATE_SWING, real_model_features
from election_assets.modelling.export import compile_swing_model
from election_assets.real import sources
from election_assets.real.backtest import (
    ACCEPTANCE_YEARS,
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
    training_rows,
    vote_weighted_gain,
)
from election_assets.real.evaluation import electoral_votes, simulate_states
from election_assets.real.features import (
    FEATURE_YEARS,
    KNOWN_BEFORE_COLUMNS,
    NEXT_ELECTION,
    build_election_features,
    election_day,
    state_poll_average,
    state_shares,
)
from election_assets.real.forecaster import NoiseModel

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
def tidy() -> dict[str, pd.DataFrame]:
    return {
        "county_returns": sources.tidy_county_returns(sources.read_source("county_returns")).frame,
        "state_returns": sources.tidy_state_returns(sources.read_source("state_returns")).frame,
        "state_polls": sources.tidy_state_polls(sources.read_source("state_polls")).frame,
        "demographics": sources.tidy_demographics(
            *(
                sources.read_source(name)
                for name in ("election_context", "ers_unemployment", "ers_education", "ers_population")
            )
        ).frame,
    }


def _features(tidy: dict[str, pd.DataFrame], year: int, **replaced: pd.DataFrame) -> pd.DataFrame:
    inputs = tidy | replaced
    return build_election_features(
        year, inputs["county_returns"], inputs["state_returns"], inputs["state_polls"], inputs["demographics"]
    ).frame


@pytest.fixture(scope="module")
def features_by_year(tidy) -> dict[int, pd.DataFrame]:
    return {year: _features(tidy, year) for year in FEATURE_YEARS}


def test_counties_that_cannot_be_joined_are_counted_not_dropped_silently(tidy):
    # Broomfield, CO (08014) was created in 2001: in 2004 it has an outcome but no previous result to forecast
    # from; in 2008 it has a previous result but none two elections back, which counts as no change.
    inputs = [tidy[name] for name in ("county_returns", "state_returns", "state_polls", "demographics")]
    first = build_election_features(2004, *inputs)
    assert first.counts["new_units_without_previous_result"] == 1
    assert "08014" not in set(first.frame["county_fips"])
    second = build_election_features(2008, *inputs)
    assert second.counts["missing_prev2_dem_share"] == 1 and "new_units_without_previous_result" not in second.counts
    broomfield = second.frame.set_index("county_fips").loc["08014"]
    assert broomfield["prev2_dem_share"] == broomfield["prev_dem_share"] and broomfield["prev_swing"] == 0.0
    # The next election has no outcome yet: every county is kept and nothing is counted as unjoined.
    upcoming = build_election_features(NEXT_ELECTION, *inputs)
    assert len(upcoming.frame) == len(second.frame) and "units_without_outcome" not in upcoming.counts


KNOWN_BEFORE = list(KNOWN_BEFORE_COLUMNS)


@pytest.mark.parametrize("year", [2012, 2016, 2020])
def test_no_feature_of_a_year_reads_that_years_results(tidy, year):
    """Scramble the year's own county and state results: every feature must stay exactly the same."""
    rng = np.random.default_rng(year)

    def scrambled(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        current = frame["year"] == year
        for column in ("dem_votes", "rep_votes"):
            frame.loc[current, column] = rng.integers(1, 1_000_000, current.sum())
        return frame

    honest = _features(tidy, year)
    leaked = _features(
        tidy, year, county_returns=scrambled(tidy["county_returns"]), state_returns=scrambled(tidy["state_returns"])
    )
    pd.testing.assert_frame_equal(honest[KNOWN_BEFORE], leaked[KNOWN_BEFORE])
    assert not np.allclose(honest["outcome_dem_share"], leaked["outcome_dem_share"])


def test_polls_after_election_day_and_demographics_of_the_year_itself_are_ignored(tidy):
    year = 2016
    late_poll = pd.DataFrame(
        {
            "year": [year] * 10,
            "state_po": ["OH"] * 10,
            "pollster": ["after the fact"] * 10,
            "end_date": pd.to_datetime([election_day(year)] * 10),
            "sample_size": [1000] * 10,
            "dem": [99.0] * 10,
            "rep": [1.0] * 10,
        }
    )
    same_year = tidy["demographics"][tidy["demographics"]["as_of_year"] < year]
    future = same_year.assign(as_of_year=year, value=same_year["value"] * 3 + 7)
    honest = _features(tidy, year)
    leaked = _features(
        tidy,
        year,
        state_polls=pd.concat([tidy["state_polls"], late_poll], ignore_index=True),
        demographics=pd.concat([tidy["demographics"], future], ignore_index=True),
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


def test_the_poll_average_uses_the_last_month_or_the_latest_polls_of_a_rarely_polled_state():
    day = pd.Timestamp(election_day(2012))
    polls = pd.DataFrame(
        {
            "year": 2012,
            "state_po": ["OH"] * 6 + ["WY"] * 7,
            "end_date": [day - pd.Timedelta(days=d) for d in (1, 2, 3, 4, 5, 200)]
            + [day - pd.Timedelta(days=d) for d in (40, 50, 60, 70, 80, 90, 300)],
            "dem": [60.0] * 5 + [10.0] + [30.0] * 4 + [90.0] + [10.0] * 2,
            "rep": [40.0] * 5 + [90.0] + [70.0] * 4 + [10.0] + [90.0] * 2,
        }
    )
    average = state_poll_average(polls, 2012)
    assert average["OH"] == pytest.approx(0.6)  # the five polls of the last month; the old one is ignored
    assert average["WY"] == pytest.approx((4 * 0.3 + 0.9) / 5)  # none in the window: the five latest


def test_unpolled_states_take_the_polled_states_mean_swing_and_a_year_without_polls_assumes_none(
    tidy, features_by_year
):
    frame = features_by_year[2012]
    polled = state_poll_average(tidy["state_polls"], 2012)
    by_state = frame.groupby("state_po")[[STATE_SWING, "state_prev_dem_share"]].first()
    unpolled = ~by_state.index.isin(polled.index)
    assert unpolled.any() and (~unpolled).any()
    poll_swing = polled - by_state.loc[~unpolled, "state_prev_dem_share"]
    assert by_state.loc[~unpolled, STATE_SWING].to_numpy() == pytest.approx(poll_swing.to_numpy())
    assert by_state.loc[unpolled, STATE_SWING].to_numpy() == pytest.approx(poll_swing.mean())
    assert (features_by_year[2020][STATE_SWING] == 0).all()


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


@pytest.fixture(scope="module")
def backtests(tidy, features_by_year):
    return {
        year: backtest_year(features_by_year, year, state_shares(tidy["state_returns"], year))
        for year in BACKTEST_YEARS
    }


@pytest.mark.parametrize("year", [2012, 2016, 2020])
def test_the_forecaster_beats_both_baselines_on_brier_and_log_loss(backtests, year):
    verdict = beats_baselines(backtests[year].scores)
    assert verdict["brier"] and verdict["log_loss"], backtests[year].scores


@pytest.mark.parametrize(
    "year",
    [
        2008,
        2012,
        pytest.param(
            2016,
            marks=pytest.mark.xfail(
                strict=True,
                reason="known miss, documented in the README: 0.905 against persistence's 0.913, decided by a few "
                "large suburban counties the model expected to keep moving right",
            ),
        ),
        2020,
    ],
)
def test_vote_weighted_accuracy_is_not_worse_than_persistence(backtests, year):
    assert beats_baselines(backtests[year].scores)["vote_weighted_accuracy"], backtests[year].scores


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


def test_the_generated_backtest_table_is_the_one_the_code_renders(backtests, figures):
    scores = {year: result.scores for year, result in backtests.items()}
    rendered = figures.backtest_document(scores)
    assert backtest_markdown(scores) in rendered
    _assert_committed(figures.BACKTEST_FILE, rendered, figures)


def test_the_generated_pooled_gains_are_the_ones_the_code_computes(backtests, figures):
    scores = {year: result.scores for year, result in backtests.items()}
    assert ACCEPTANCE_YEARS == (2012, 2016, 2020)
    rendered = figures.backtest_document(scores)
    for years, label in ((ACCEPTANCE_YEARS, "2012-2020"), (BACKTEST_YEARS, "2008-2020")):
        assert f"| {label} | {format_gain(pooled_vote_weighted_gain(scores, years))} |" in rendered
    _assert_committed(figures.BACKTEST_FILE, rendered, figures)


def test_the_backtest_scores_every_county_and_state_of_the_test_year(backtests, features_by_year):
    for year, result in backtests.items():
        assert set(result.scores.index) == {FORECASTER, PERSISTENCE, MARGIN_LOGISTIC}
        assert len(result.counties) == len(features_by_year[year])
        assert result.scores.loc[FORECASTER, "states"] == 51
        assert 0 <= result.scores.loc[FORECASTER, "states_right"] <= 51
        for curve in result.calibration.values():
            assert curve["counties"].sum() == len(result.counties)


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


def test_the_compiled_model_reproduces_the_forecaster_after_a_round_trip_through_npz(backtests, tmp_path):
    result = backtests[2016]
    forecaster, counties = result.forecaster, result.counties
    compiled = compile_swing_model(
        forecaster.relative_swing, forecaster.polled_noise.total, forecaster.unpolled_noise.total
    )
    save_compiled_model(compiled, tmp_path / "model.npz")
    loaded = load_compiled_model(tmp_path / "model.npz")
    assert isinstance(loaded, SwingModel)
    columns = real_model_features(counties[list(REAL_INPUT_FIELD_NAMES)].to_numpy())
    # XGBoost predicts in float32; the compiled trees sum in float64.
    assert loaded.predict_share(columns) == pytest.approx(forecaster.predict_share(counties), abs=1e-6)
    assert loaded.predict_proba_a(columns) == pytest.approx(forecaster.win_probability(counties), abs=1e-5)
    explanation = loaded.explain(columns[:20])
    assert explanation.space == "share"
    assert explanation.bias + explanation.contributions.sum(axis=1) == pytest.approx(
        loaded.predict_share(columns[:20]), abs=1e-9
    )


def test_the_generated_figures_of_the_model_variants_are_the_ones_the_script_prints(features_by_year, figures):
    variants = figures.load_variants()
    backtest_rows = variants.backtest_rows(features_by_year)
    walk_forward = variants.walk_forward_inside_training(features_by_year)
    _assert_committed(figures.VARIANTS_FILE, figures.variants_document(backtest_rows, walk_forward), figures)

    # What docs/real-mode.md says of these figures: the ridge passes every year with a lower share RMSE than the
    # trees, no relative swing loses 2012 to persistence, and a walk-forward choice for 2016 keeps the trees.
    rows = backtest_rows.set_index(["relative swing", "year"])
    years = list(ACCEPTANCE_YEARS)
    assert (rows.xs("ridge", level="relative swing").loc[years, "vs persistence"] >= 0).all()
    ridge_rmse = rows.xs("ridge", level="relative swing")["share RMSE"]
    trees_rmse = rows.xs("trees (shipped)", level="relative swing")["share RMSE"]
    assert (ridge_rmse.loc[years] < trees_rmse.loc[years]).all()
    assert rows.loc[("no relative swing", 2012), "vs persistence"] < 0
    choice = walk_forward.set_index("backtest year")
    assert choice.loc[2016, "a walk-forward choice keeps"] == "trees (shipped)"
