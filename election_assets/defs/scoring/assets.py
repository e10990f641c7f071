"""Scoring: the current batch forecast by the model the store serves, through the same path as the API."""

from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from election_assets.core.features import engineer_features
from election_assets.core.schema import CANDIDATE_A, CANDIDATE_B, INPUT_FIELD_NAMES, LABEL, REGION_ID
from election_assets.defs.checks import pandera_asset_check
from election_assets.defs.lineage import table_output
from election_assets.defs.resources import ProjectStorage
from election_assets.preparation.schemas import PREDICTIONS_SCHEMA

PREDICTIONS_CSV = "batch_predictions.csv"


@dg.asset(
    group_name="scoring",
    code_version="1",
    kinds={"pandas", "numpy"},
    deps=["champion_model"],
    # Daily scoring: forecasts older than two days mean the loop has stalled.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=2), warn_window=timedelta(days=1)),
)
def batch_predictions(
    context: dg.AssetExecutionContext, storage: ProjectStorage, cleaned_current_regions: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """Forecast for every region of the current batch, by the champion the model store points at."""
    served = storage.load_champion(needed_for="to score the batch")
    features = engineer_features(cleaned_current_regions[list(INPUT_FIELD_NAMES)].to_numpy(np.float64))
    p_a = served.model.predict_proba_a(features)
    frame = pd.DataFrame(
        {
            REGION_ID: cleaned_current_regions[REGION_ID].to_numpy(),
            "predicted_winner": np.where(p_a >= 0.5, CANDIDATE_A, CANDIDATE_B),
            "probability_candidate_a": p_a,
            "probability_candidate_b": 1.0 - p_a,
            "confidence": np.maximum(p_a, 1.0 - p_a),
            "model_version": served.version,
        }
    )
    export = storage.reports_path("predictions") / PREDICTIONS_CSV
    frame.to_csv(export, index=False)
    metadata = {
        "model_version": served.version,
        "share_predicted_candidate_a": float((p_a >= 0.5).mean()),
        "mean_confidence": float(frame["confidence"].mean()),
        "csv": dg.MetadataValue.path(str(export)),
    }
    if LABEL in cleaned_current_regions.columns:
        # Outcomes are known for synthetic batches: report how the forecast did.
        metadata["realized_accuracy"] = float((frame["predicted_winner"] == cleaned_current_regions[LABEL]).mean())
    context.log.info(f"scored {len(frame)} regions with champion {served.version}")
    return table_output(frame, metadata)


batch_predictions_check = pandera_asset_check(batch_predictions, PREDICTIONS_SCHEMA)
