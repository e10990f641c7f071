"""The naive reference the benchmark compares against: FastAPI + pydantic + pandas + the fitted estimator's
``predict_proba`` per request.

Run as ``python benchmarks/api_baseline_fastapi.py MODEL PORT``: MODEL is an XGBoost ``.json`` model or a pickled
scikit-learn estimator (``.pkl``) that ``api_benchmark.py`` exported from the champion. Not part of the product.
"""

from __future__ import annotations

import pickle
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from xgboost import XGBClassifier

from election_assets.core.features import FEATURE_NAMES, engineer_features
from election_assets.core.schema import INPUT_FIELD_NAMES


class Region(BaseModel):
    population: int
    median_age: float
    median_income: float
    education_rate: float
    urban_ratio: float
    prev_election_turnout: float
    prev_winner_margin: float
    voter_registration_rate: float
    social_sentiment_score: float
    candidate_a_favorability: float
    candidate_b_favorability: float
    poll_candidate_a: float
    poll_candidate_b: float
    undecided_rate: float


class Batch(BaseModel):
    rows: list[Region]


def _load(path: str):
    if path.endswith(".json"):
        booster = XGBClassifier()
        booster.load_model(path)
        return booster
    with open(path, "rb") as handle:  # the benchmark's own export of the champion, never a foreign file
        return pickle.load(handle)  # noqa: S301


model = _load(sys.argv[1])
app = FastAPI()


def _score(frame: pd.DataFrame) -> list[dict]:
    features = pd.DataFrame(engineer_features(frame[list(INPUT_FIELD_NAMES)].to_numpy()), columns=FEATURE_NAMES)
    p = model.predict_proba(features)[:, 1]
    return [
        {
            "predicted_winner": "Candidate_A" if a >= 0.5 else "Candidate_B",
            "confidence": float(max(a, 1 - a)),
            "probabilities": {"Candidate_A": float(a), "Candidate_B": float(1 - a)},
            "model_version": "baseline",
        }
        for a in p
    ]


@app.get("/ready")
def ready() -> dict:
    return {"status": "ready"}


@app.post("/predict")
def predict(region: Region) -> dict:
    return _score(pd.DataFrame([region.model_dump()]))[0]


@app.post("/predict/batch")
def predict_batch(batch: Batch) -> dict:
    return {"predictions": _score(pd.DataFrame([r.model_dump() for r in batch.rows])), "model_version": "baseline"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", workers=1)
