"""Time the 2024 campaign timeline as the ``campaign_timeline`` asset computes it: every day of the campaign
forecast from the polls that ended before it, with the published real-mode model.

    .venv/bin/python benchmarks/campaign_timeline_benchmark.py

It serves the model ``make real`` published (``ELECTION_REAL_MODEL_STORE``, default data/real_model_store); without
one it trains the same model first (about a minute, not counted).
"""

from __future__ import annotations

import time

from election_assets.core.model_store import ModelStore, ModelStoreError
from election_assets.real.backtest import training_rows
from election_assets.real.campaign import CampaignModel, campaign_days, forecast_as_of, timeline
from election_assets.real.features import NEXT_ELECTION, ElectionInputs
from election_assets.real.forecaster import fit_forecaster
from election_assets.settings import PipelineSettings


def main() -> None:
    started = time.perf_counter()
    inputs = ElectionInputs.read()
    counties = inputs.features(NEXT_ELECTION).frame
    print(f"inputs and {NEXT_ELECTION} county features: {time.perf_counter() - started:.1f} s", flush=True)
    try:
        stored = ModelStore(PipelineSettings.from_env().real_model_store_dir).load()
    except ModelStoreError:
        forecaster = fit_forecaster(
            training_rows(inputs.features_by_year(), before=NEXT_ELECTION), inputs.polls, inputs.state_returns
        )
        started = time.perf_counter()  # fitting is the champion asset's work, not the timeline's
        model, origin = CampaignModel.of_forecaster(forecaster), "a fresh model"
    else:
        started = time.perf_counter()  # the timeline asset's own work: the polls' error curve, then every day
        model = CampaignModel.published(stored, inputs.polls, inputs.state_returns)
        origin = f"published model {stored.version}"
    days = campaign_days()
    frame = timeline(forecast_as_of(model, counties, inputs.polls, inputs.state_returns, day) for day in days)
    seconds = time.perf_counter() - started
    print(f"timeline with {origin}: {len(days)} days ({days[0]} to {days[-1]}) in {seconds:.1f} s")
    print(f"  {1000 * seconds / len(days):.0f} ms per day; target: the whole timeline under 60 s")
    print(f"  last day: P(Democrat wins) {frame['p_candidate_a_wins'].iloc[-1]:.3f}")


if __name__ == "__main__":
    main()
