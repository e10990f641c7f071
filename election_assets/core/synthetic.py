"""Seeded synthetic regions whose label probability p(x) is known exactly.

The label is drawn from ``label_probability(x)``, a non-linear function of the 14 input fields with interactions
and a floor of irreducible noise. Because p(x) is known, the Bayes-optimal accuracy E[max(p, 1 - p)] and the
Bayes Brier score E[p (1 - p)] of any generated set can be computed exactly, which tells how close a trained
model is to the best possible one.

``drift`` moves the distribution of the covariates and adds a national swing towards Candidate B, the way a
new election cycle moves both the electorate and the mood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from election_assets.core.schema import INPUT_FIELD_NAMES, LABEL, LABELS, REGION_ID

# The generating process's own P(Candidate_A): carried along for evaluation only, never used as a feature.
TRUE_PROBABILITY = "true_probability_a"

# p(x) never leaves [NOISE_FLOOR, 1 - NOISE_FLOOR]: some outcomes stay unpredictable whatever the data says.
NOISE_FLOOR = 0.02
# Logit shift towards Candidate B per unit of drift.
SWING_PER_DRIFT = -1.0
DIRTY_REASONS = ("missing_value", "outlier", "inconsistent_polls")


@dataclass(frozen=True)
class BayesMetrics:
    """Expected scores of the Bayes classifier that predicts p(x) itself."""

    accuracy: float
    brier: float
    log_loss: float

    @classmethod
    def of(cls, p: np.ndarray) -> BayesMetrics:
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
        return cls(
            accuracy=float(np.mean(np.maximum(p, 1 - p))),
            brier=float(np.mean(p * (1 - p))),
            log_loss=float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p)))),
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def label_probability(inputs: np.ndarray, drift: float = 0.0) -> np.ndarray:
    """P(winner == Candidate_A | x) for an ``(n, 14)`` input matrix in ``INPUT_FIELD_NAMES`` order."""
    f = {name: inputs[:, i] for i, name in enumerate(INPUT_FIELD_NAMES)}
    lead = f["poll_candidate_a"] - f["poll_candidate_b"]
    favorability_gap = f["candidate_a_favorability"] - f["candidate_b_favorability"]
    logit = (
        16.0 * lead
        + 6.0 * favorability_gap
        + 6.0 * f["prev_election_turnout"] * f["prev_winner_margin"]
        + 4.5 * f["social_sentiment_score"] * f["urban_ratio"]
        # Education pulls towards A in cities and saturates: a non-linear interaction trees must discover.
        + 3.0 * np.tanh(6.0 * (f["education_rate"] - 0.35)) * f["urban_ratio"]
        # Undecided voters break towards the better-liked candidate.
        + 18.0 * favorability_gap * f["undecided_rate"]
        - 1.2 * (f["median_age"] - 42.0) / 10.0 * (1.0 - f["urban_ratio"])
        + SWING_PER_DRIFT * drift
    )
    return NOISE_FLOOR + (1.0 - 2.0 * NOISE_FLOOR) * _sigmoid(logit)


def _clip_normal(rng: np.random.Generator, mean: np.ndarray | float, sd: float, low: float, high: float, n: int):
    return np.clip(rng.normal(mean, sd, n), low, high)


def _covariates(rng: np.random.Generator, n: int, drift: float) -> pd.DataFrame:
    urban = np.clip(rng.beta(2.0, 2.0, n) + 0.10 * drift, 0.0, 1.0)
    education = _clip_normal(rng, 0.22 + 0.22 * urban + 0.03 * drift, 0.08, 0.02, 0.95, n)
    prev_margin = _clip_normal(rng, -0.25 + 0.55 * urban, 0.25, -0.95, 0.95, n)
    turnout = _clip_normal(rng, 0.58 + 0.25 * (education - 0.3), 0.08, 0.2, 0.95, n)
    fav_a = _clip_normal(rng, 0.45 + 0.15 * prev_margin - 0.05 * drift, 0.09, 0.01, 0.99, n)
    fav_b = _clip_normal(rng, 0.45 - 0.15 * prev_margin + 0.03 * drift, 0.09, 0.01, 0.99, n)
    undecided = np.clip(rng.beta(2.0, 16.0, n) * (1.0 + 0.5 * drift), 0.0, 0.6)
    share_a = _clip_normal(rng, 0.5 + 0.25 * prev_margin + 0.12 * (fav_a - fav_b) - 0.03 * drift, 0.06, 0.02, 0.98, n)
    return pd.DataFrame(
        {
            "population": np.maximum(np.round(np.exp(rng.normal(9.5 + 2.5 * urban, 0.9, n))), 50.0),
            "median_age": _clip_normal(rng, 43.0 - 7.0 * urban, 4.5, 20.0, 75.0, n),
            "median_income": np.exp(rng.normal(np.log(42_000) + 1.2 * (education - 0.3), 0.22, n)),
            "education_rate": education,
            "urban_ratio": urban,
            "prev_election_turnout": turnout,
            "prev_winner_margin": prev_margin,
            "voter_registration_rate": np.clip(turnout + rng.normal(0.14, 0.05, n), turnout, 1.0),
            "social_sentiment_score": _clip_normal(rng, 0.35 * prev_margin - 0.25 * drift, 0.3, -1.0, 1.0, n),
            "candidate_a_favorability": fav_a,
            "candidate_b_favorability": fav_b,
            "poll_candidate_a": (1.0 - undecided) * share_a,
            "poll_candidate_b": (1.0 - undecided) * (1.0 - share_a),
            "undecided_rate": undecided,
        },
        columns=list(INPUT_FIELD_NAMES),
    )


def _make_dirty(rng: np.random.Generator, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Corrupt a share of rows the way real feeds do; every corruption stays within the raw schema's ranges."""
    n_dirty = int(round(fraction * len(frame)))
    rows = rng.choice(len(frame), size=n_dirty, replace=False)
    for reason, chunk in zip(DIRTY_REASONS, np.array_split(rows, len(DIRTY_REASONS)), strict=True):
        if reason == "missing_value":
            columns = rng.choice(len(INPUT_FIELD_NAMES), size=len(chunk))
            for row, column in zip(chunk, columns, strict=True):
                frame.iat[row, column] = np.nan
        elif reason == "outlier":
            frame.loc[chunk, "median_income"] = rng.uniform(600_000, 1_000_000, len(chunk))
        else:
            frame.loc[chunk, "poll_candidate_a"] = np.minimum(frame.loc[chunk, "poll_candidate_a"] + 0.45, 1.0)
    return frame


def generate_regions(
    n_regions: int, seed: int, drift: float = 0.0, dirty_fraction: float = 0.0, id_prefix: str = "R"
) -> pd.DataFrame:
    """Regions with ids, the 14 input fields, the drawn ``winner`` and ``TRUE_PROBABILITY``.

    ``dirty_fraction`` of the rows are then corrupted (their true probability stays that of the clean values).
    """
    rng = np.random.default_rng(seed)
    frame = _covariates(rng, n_regions, drift)
    p = label_probability(frame.to_numpy(np.float64), drift)
    winner = np.where(rng.random(n_regions) < p, LABELS[0], LABELS[1])
    frame = _make_dirty(rng, frame, dirty_fraction)
    frame.insert(0, REGION_ID, [f"{id_prefix}-{seed}-{i:07d}" for i in range(n_regions)])
    frame[LABEL] = winner
    frame[TRUE_PROBABILITY] = p
    return frame
