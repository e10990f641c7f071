"""Row-level cleaning rules. Every dropped row is counted under the first rule it breaks."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from election_assets.core.schema import INPUT_FIELD_NAMES, INPUT_FIELDS, LABEL
from election_assets.preparation.schemas import POLL_SUM_TOLERANCE

# A robust z-score (median / MAD) above this is an outlier: about one in a billion for normal data.
OUTLIER_Z = 6.0
# Heavy-tailed fields are screened on the log scale.
OUTLIER_SCREENED_FIELDS = ("median_income", "population")


@dataclass(frozen=True)
class CleaningResult:
    frame: pd.DataFrame
    dropped: dict[str, int]

    @property
    def drop_fraction(self) -> float:
        total = len(self.frame) + sum(self.dropped.values())
        return sum(self.dropped.values()) / total if total else 0.0


def _robust_z(values: pd.Series) -> pd.Series:
    median = values.median()
    mad = (values - median).abs().median()
    if not mad or np.isnan(mad):
        return pd.Series(0.0, index=values.index)
    return 0.6745 * (values - median).abs() / mad


def clean_regions(raw: pd.DataFrame) -> CleaningResult:
    """Drop rows with gaps, inconsistent poll shares or outlying values; cast fields to their schema types."""
    required = list(INPUT_FIELD_NAMES) + ([LABEL] if LABEL in raw.columns else [])
    rules: dict[str, pd.Series] = {"missing_value": raw[required].isna().any(axis=1)}
    polls = raw["poll_candidate_a"] + raw["poll_candidate_b"] + raw["undecided_rate"]
    rules["inconsistent_polls"] = polls > 1.0 + POLL_SUM_TOLERANCE
    outlier = pd.Series(False, index=raw.index)
    for name in OUTLIER_SCREENED_FIELDS:
        outlier |= _robust_z(np.log(raw[name].where(raw[name] > 0))) > OUTLIER_Z
    rules["outlier"] = outlier

    keep = pd.Series(True, index=raw.index)
    dropped = {}
    for reason, broken in rules.items():
        dropped[reason] = int((keep & broken).sum())
        keep &= ~broken
    frame = raw.loc[keep].reset_index(drop=True)
    frame = frame.astype({field.name: "int64" if field.kind == "int" else "float64" for field in INPUT_FIELDS})
    return CleaningResult(frame=frame, dropped=dropped)
