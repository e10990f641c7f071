"""Preparation: cleaned tables and the engineered features the candidates train on."""

import dagster as dg
import pandas as pd
from pydantic import Field

from election_assets.core.features import FEATURE_NAMES
from election_assets.defs.checks import pandera_asset_check
from election_assets.defs.lineage import table_output
from election_assets.preparation.cleaning import clean_regions
from election_assets.preparation.features import feature_table
from election_assets.preparation.schemas import FEATURES_SCHEMA, SPLIT, TARGET, cleaned_regions_schema

DROP_RATE_CHECK = "drop_rate_within_limit"


class CleaningConfig(dg.Config):
    max_drop_fraction: float = Field(
        0.10, gt=0.0, le=1.0, description="Fail the drop-rate check when more than this share of rows is dropped"
    )


def _clean(raw: pd.DataFrame, config: CleaningConfig):
    result = clean_regions(raw)
    passed = result.drop_fraction <= config.max_drop_fraction
    check = dg.AssetCheckResult(
        check_name=DROP_RATE_CHECK,
        passed=passed,
        description=(
            f"dropped {result.drop_fraction:.2%} of rows "
            f"({'within' if passed else 'above'} the limit of {config.max_drop_fraction:.0%}): {result.dropped}"
        ),
        metadata={"drop_fraction": result.drop_fraction, **{f"dropped_{k}": v for k, v in result.dropped.items()}},
    )
    output = table_output(
        result.frame,
        {
            "rows_in": len(raw),
            "rows_dropped": sum(result.dropped.values()),
            "drop_fraction": result.drop_fraction,
            "dropped_by_reason": result.dropped,
        },
    )
    return output, check


def _cleaned_asset(name: str, upstream: str, description: str) -> dg.AssetsDefinition:
    """The cleaning asset for one raw table, with its blocking drop-rate check."""

    @dg.asset(
        name=name,
        ins={"raw": dg.AssetIn(upstream)},
        group_name="preparation",
        code_version="1",
        kinds={"pandas"},
        description=description,
        check_specs=[
            dg.AssetCheckSpec(
                DROP_RATE_CHECK,
                asset=name,
                blocking=True,
                description="Too many dropped rows means the feed is broken, not noisy",
            )
        ],
    )
    def _cleaned(raw: pd.DataFrame, config: CleaningConfig):
        yield from _clean(raw, config)

    return _cleaned


cleaned_regions = _cleaned_asset(
    "cleaned_regions",
    "raw_regions",
    "Training history without gaps, inconsistent polls or outliers; drop counts per reason in metadata.",
)
cleaned_current_regions = _cleaned_asset(
    "cleaned_current_regions", "current_regions", "The current batch, cleaned by the same rules as the history."
)


class FeatureConfig(dg.Config):
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9, description="Share of regions held out for testing")


@dg.asset(group_name="preparation", code_version="1", kinds={"pandas", "numpy"})
def region_features(cleaned_regions: pd.DataFrame, config: FeatureConfig) -> dg.Output[pd.DataFrame]:
    """The shared feature module applied to the cleaned history, with the 0/1 target and a hash-based split."""
    frame = feature_table(cleaned_regions, config.test_fraction)
    return table_output(
        frame,
        {
            "features": len(FEATURE_NAMES),
            "train_rows": int((frame[SPLIT] == "train").sum()),
            "test_rows": int((frame[SPLIT] == "test").sum()),
            "share_candidate_a": float(frame[TARGET].mean()),
        },
    )


cleaned_regions_check = pandera_asset_check(cleaned_regions, cleaned_regions_schema(labelled=True))
cleaned_current_regions_check = pandera_asset_check(cleaned_current_regions, cleaned_regions_schema(labelled=False))
region_features_check = pandera_asset_check(region_features, FEATURES_SCHEMA)
