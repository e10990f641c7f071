"""Pandera schemas as blocking asset checks: the one factory every schema check of the graph is built with.

A failing check reports each broken rule with its column, the rule and example rows, and (being blocking) stops
every downstream asset.
"""

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from election_assets.core.schema import REGION_ID

MAX_EXAMPLES = 5


def describe_failures(frame: pd.DataFrame, error: pa.errors.SchemaErrors) -> tuple[str, pd.DataFrame]:
    """Summarise Pandera failure cases as one sentence per broken rule, with example rows by region id."""
    cases = error.failure_cases.copy()
    cases["column"] = cases["column"].fillna("<table>")
    region_ids = frame[REGION_ID] if REGION_ID in frame.columns else None
    sentences, rows = [], []
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        if check == "column_in_dataframe":  # Pandera reports a missing column as a failure of the table itself
            missing = ", ".join(f"'{name}'" for name in group["failure_case"].astype(str))
            sentences.append(f"column {missing} is missing")
            rows.append({"column": missing, "rule": "required column", "failing_rows": 0, "examples": "missing"})
            continue
        examples = []
        for _, case in group.head(MAX_EXAMPLES).iterrows():
            index = case["index"]
            where = "row ?"
            if index is not None and not pd.isna(index) and region_ids is not None and index in region_ids.index:
                where = f"{REGION_ID}={region_ids.loc[index]}"
            elif index is not None and not pd.isna(index):
                where = f"row {index}"
            examples.append(f"{where} value={case['failure_case']!r}")
        sentences.append(f"column '{column}' failed rule '{check}' on {len(group)} row(s), e.g. {'; '.join(examples)}")
        rows.append({"column": column, "rule": str(check), "failing_rows": len(group), "examples": "; ".join(examples)})
    return " | ".join(sentences), pd.DataFrame(rows)


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> dg.AssetCheckResult:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        summary, table = describe_failures(frame, error)
        return dg.AssetCheckResult(
            passed=False,
            description=f"{schema.name}: {summary}",
            metadata={
                "rows_checked": len(frame),
                "failing_rules": len(table),
                "failures": dg.MetadataValue.md(table.to_markdown(index=False)),
            },
        )
    return dg.AssetCheckResult(
        passed=True, description=f"{schema.name}: all rules hold", metadata={"rows_checked": len(frame)}
    )


def pandera_asset_check(asset: dg.AssetsDefinition, schema: pa.DataFrameSchema) -> dg.AssetChecksDefinition:
    """A blocking check that validates ``asset``'s value against ``schema``."""

    @dg.asset_check(
        asset=asset,
        name=f"{schema.name}_schema",
        blocking=True,
        description=f"Pandera schema '{schema.name}': types, ranges, uniqueness. Blocks downstream assets on failure.",
    )
    def _check(frame: pd.DataFrame) -> dg.AssetCheckResult:
        return validate(frame, schema)

    return _check
