"""Time the 2024 campaign timeline as the ``campaign_timeline`` asset computes it: every day of the campaign
forecast from the polls that ended before it, with the published real-mode model.

    .venv/bin/python benchmarks/campaign_timeline_benchmark.py

It serves the model ``make real`` published (``ELECTION_REAL_MODEL_STORE``, default data/real_model_store); without
one it trains the same model first (about a minute, not counted).
"""

from __future__ import annotations

import time

from election_assets.core.model_store import ModelStore, ModelStoreError
from election_assets.modelling.export import compile_swing_model
from election_assets.real.backtest import training_rows
from election_assets.real.campaign import campaign_days, forecast_as_of, timeline
from election_assets.real.features import NEXT_ELECTION, ElectionInputs
from election_assets.real.forecaster import PollNoiseCurve, fit_forecaster
from election_assets.settings import PipelineSettings


def main() -> None:
    started = time.perf_counter()
    inputs = ElectionInputs.read()
    counties = inputs.features(NEXT_ELECTION).frame
    print(f"inputs and {NEXT_ELECTION} county features: {time.perf_counter() - started:.1f} s", flush=True)
    try:
        stored = ModelStore(PipelineSettings.from_env().real_model_store_dir).load()
        model, noise, origin = stored.model, stored.manifest.noise, f"published model {stored.version}"
        trained_through = stored.manifest.trained_through
    except ModelStoreError:
        forecaster = fit_forecaster(
            training_rows(inputs.features_by_year(), before=NEXT_ELECTION), inputs.poll_errors()
        )
        model = compile_swing_model(
            forecaster.relative_swing, forecaster.polled_noise.total, forecaster.unpolled_noise.total
        )
        noise, origin = {"polled": forecaster.polled_noise, "unpolled": forecaster.unpolled_noise}, "a fresh model"
        trained_through = forecaster.trained_through
    days = campaign_days()
    started = time.perf_counter()  # the timeline asset's own work: the polls' error curve, then every day
    curve = PollNoiseCurve.from_poll_errors(inputs.poll_errors(), trained_through)
    frame = timeline(
        forecast_as_of(model, noise, curve, counties, inputs.polls, inputs.state_returns, day) for day in days
    )
    seconds = time.perf_counter() - started
    print(f"timeline with {origin}: {len(days)} days ({days[0]} to {days[-1]}) in {seconds:.1f} s")
    print(f"  {1000 * seconds / len(days):.0f} ms per day; target: the whole timeline under 60 s")
    print(f"  last day: P(Democrat wins) {frame['p_candidate_a_wins'].iloc[-1]:.3f}")


if __name__ == "__main__":
    main()
