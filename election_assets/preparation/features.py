"""The training table: the shared feature module applied to cleaned rows, the 0/1 target and a stable split."""

import hashlib

import numpy as np
import pandas as pd

from election_assets.core.features import FEATURE_NAMES, engineer_features
from election_assets.core.schema import CANDIDATE_A, INPUT_FIELD_NAMES, LABEL, REGION_ID
from election_assets.core.synthetic import TRUE_PROBABILITY
from election_assets.preparation.schemas import SPLIT, TARGET


def holdout_split(region_ids: pd.Series, test_fraction: float) -> np.ndarray:
    """Assign each region to train or test by a hash of its id: stable across runs and data versions."""
    buckets = region_ids.map(lambda rid: int.from_bytes(hashlib.sha256(rid.encode()).digest()[:4], "big"))
    return np.where(buckets.to_numpy() / 2**32 < test_fraction, "test", "train")


def feature_table(cleaned: pd.DataFrame, test_fraction: float) -> pd.DataFrame:
    """One row per cleaned region: its id, the model's features, the target, the split (and, for synthetic
    data, the true probability the Bayes gap is measured with)."""
    matrix = engineer_features(cleaned[list(INPUT_FIELD_NAMES)].to_numpy(np.float64))
    frame = pd.DataFrame(matrix, columns=list(FEATURE_NAMES))
    frame.insert(0, REGION_ID, cleaned[REGION_ID].to_numpy())
    frame[TARGET] = (cleaned[LABEL].to_numpy() == CANDIDATE_A).astype(np.int64)
    frame[SPLIT] = holdout_split(cleaned[REGION_ID], test_fraction)
    if TRUE_PROBABILITY in cleaned.columns:
        frame[TRUE_PROBABILITY] = cleaned[TRUE_PROBABILITY].to_numpy()
    return frame
