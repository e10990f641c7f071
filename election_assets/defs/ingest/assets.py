"""Ingest: the labelled history the models learn from and the current batch they score.

By default both are generated (synthetic mode, seeded); ``source_path`` ingests a CSV or Parquet file instead,
which is how real feeds (and corrupt ones, in tests) enter the graph. Nothing is coerced here: the blocking
schema checks decide whether the data may flow on.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from election_assets.core.schema import REGION_ID
from election_assets.core.synthetic import TRUE_PROBABILITY, BayesMetrics, generate_regions
from election_assets.defs.checks import pandera_asset_check
from election_assets.defs.lineage import table_output
from election_assets.preparation.schemas import raw_regions_schema


class RegionFeedConfig(dg.Config):
    n_regions: int = Field(20_000, ge=100, le=10_000_000, description="Regions to generate (synthetic mode)")
    seed: int = Field(7, description="Random seed of the generator; same seed, same data")
    drift: float = Field(0.0, ge=0.0, le=5.0, description="Shift of the covariates and national swing (0 = none)")
    dirty_fraction: float = Field(0.02, ge=0.0, le=0.5, description="Share of rows corrupted like real feeds")
    source_path: str | None = Field(
        None, description="CSV or Parquet file of regions to ingest instead of generating them"
    )


class CurrentBatchConfig(RegionFeedConfig):
    n_regions: int = Field(5_000, ge=100, le=10_000_000, description="Regions in the batch to score")
    seed: int = Field(2026, description="Random seed of the generator; same seed, same data")
    dirty_fraction: float = Field(0.01, ge=0.0, le=0.5, description="Share of rows corrupted like real feeds")


def _read_source(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise dg.Failure(f"config field 'source_path': no file at {path}; give the path of a CSV or Parquet file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in {".csv", ".gz"}:
        return pd.read_csv(path, dtype={REGION_ID: str})
    raise dg.Failure(f"config field 'source_path': {path.name} is neither .csv, .csv.gz nor .parquet")


def _ingest(config: RegionFeedConfig) -> dg.Output[pd.DataFrame]:
    if config.source_path:
        # Recorded absolute: a retraining re-ingests from this record, from whatever working directory it runs in.
        path = Path(config.source_path).resolve()
        frame = _read_source(path)
        metadata: dict = {"source": str(path)}
    else:
        frame = generate_regions(config.n_regions, config.seed, config.drift, config.dirty_fraction)
        metadata = {"source": "synthetic", "seed": config.seed, "drift": config.drift}
    if TRUE_PROBABILITY in frame.columns:
        bayes = BayesMetrics.of(frame[TRUE_PROBABILITY].to_numpy())
        metadata |= {"bayes_optimal_accuracy": bayes.accuracy, "bayes_brier": bayes.brier}
    return table_output(frame, metadata)


@dg.asset(group_name="ingest", code_version="1", kinds={"pandas"})
def raw_regions(config: RegionFeedConfig) -> dg.Output[pd.DataFrame]:
    """Labelled regions from past elections: the training history, with winners."""
    return _ingest(config)


@dg.asset(group_name="ingest", code_version="1", kinds={"pandas"})
def current_regions(config: CurrentBatchConfig) -> dg.Output[pd.DataFrame]:
    """The batch of regions to forecast now (labels, when present, are used only to score the forecasts)."""
    return _ingest(config)


raw_regions_check = pandera_asset_check(raw_regions, raw_regions_schema(labelled=True))
current_regions_check = pandera_asset_check(current_regions, raw_regions_schema(labelled=False))
