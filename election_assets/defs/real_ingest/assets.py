"""Real-mode ingest: one raw asset per shipped source file, and the tidy tables real mode joins on.

Raw assets are built from the table of sources (``election_assets.real.catalog``) and read a file as published
(``election_assets.real.sources.read_source``) from the ``storage`` resource's ``real_data_dir``
(``ELECTION_REAL_DATA_DIR``, default: the files shipped in the package), but ``raw_polls_inbox``, which reads the
polls feed's inbox (``polls_inbox_dir``, ``ELECTION_POLLS_INBOX``; ``defs/real/inbox.py`` watches it); tidy
assets fix the join quirks and report, in metadata, how many rows each quirk touched and how many rows were left
out and why. Every table carries its content fingerprint as data version, and every table has a blocking Pandera
check, so a broken file stops the graph where it enters.
"""

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from election_assets.defs.checks import describe_failures, pandera_asset_check, validate
from election_assets.defs.lineage import table_output
from election_assets.defs.resources import ProjectStorage
from election_assets.real import schemas
from election_assets.real.catalog import RAW_SOURCES, RawSource
from election_assets.real.polls import INBOX_COLUMNS, InboxFormatError, inbox_file_frames, read_polls_inbox, tidy_polls
from election_assets.real.sources import (
    Tidy,
    read_source,
    tidy_county_returns,
    tidy_demographics,
    tidy_state_returns,
)

GROUP = "real_ingest"
CODE_VERSION = "1"


def _raw_asset(source: RawSource) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{source.name}",
        group_name=GROUP,
        code_version=CODE_VERSION,
        kinds={"pandas", "csv"},
        description=source.description,
    )
    def _raw(storage: ProjectStorage) -> dg.Output[pd.DataFrame]:
        if source.from_inbox:
            return _read_inbox(storage.polls_inbox_dir)
        frame = read_source(source.name, storage.real_data_dir)
        return table_output(frame, {"source_directory": storage.real_data_dir, "source_files": ", ".join(source.files)})

    return _raw


def _read_inbox(directory: str) -> dg.Output[pd.DataFrame]:
    try:
        frame = read_polls_inbox(directory)
    except InboxFormatError as error:
        raise dg.Failure(str(error)) from error
    files = list(frame["source_file"].unique())
    return table_output(
        frame, {"source_directory": directory, "source_files": ", ".join(files) or "none", "files": len(files)}
    )


def _file_failures(rows: pd.DataFrame, error: pa.errors.SchemaErrors) -> pd.DataFrame:
    """The failure cases of one inbox file that say what is wrong, without the echoes of each failure.

    A value that is not of its column's type is reported once (its failed coercion, not also the dtype and the rules
    that could not run on the column); a rule across columns ("cand1_pct + cand2_pct <= 100") names the columns in
    it, not every column of the failing row.
    """
    cases = error.failure_cases
    check = cases["check"].astype(str)
    uncoerced = set(cases.loc[check.str.startswith("coerce_dtype("), "column"])
    echo = check.str.startswith("dtype(") & cases["column"].isin(uncoerced)
    could_not_run = cases["failure_case"].astype(str).str.match(r"^\w+(Error|Exception)\(")
    across = cases["schema_context"].eq("DataFrameSchema") & check.ne("column_in_dataframe")
    named = pd.Series(
        [str(column) in rule for column, rule in zip(cases["column"], check, strict=True)], index=cases.index
    )
    return cases.loc[~echo & ~could_not_run & (~across | named)]


def validate_inbox_file(rows: pd.DataFrame, schema: pa.DataFrameSchema) -> tuple[str, pd.DataFrame] | None:
    """One inbox file's rows (text) against its format's schema: None when every rule holds, else the summary and
    table of ``checks.describe_failures``, rows numbered within the file."""
    try:
        schema.validate(rows, lazy=True)
    except pa.errors.SchemaErrors as error:
        error.failure_cases = _file_failures(rows, error)
        return describe_failures(rows, error)
    return None


def validate_inbox(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> dg.AssetCheckResult:
    """The inbox's table against ``schema`` (its own columns), then each file against the schema of its format
    (``schemas.INBOX_SCHEMAS``); a failure names the file, the column, the rule and the row within the file."""
    table = validate(frame[list(INBOX_COLUMNS)], schema)
    if not table.passed:
        return table
    failures = {}
    for name, form, rows in inbox_file_frames(frame):
        found = validate_inbox_file(rows, schemas.INBOX_SCHEMAS[form])
        if found is not None:
            failures[name] = (schemas.INBOX_SCHEMAS[form].name, *found)
    files = int(frame["source_file"].nunique())
    metadata = {"rows_checked": len(frame), "files": files}
    if not failures:
        return dg.AssetCheckResult(
            passed=True, description=f"{schema.name}: {files} file(s), all rules hold", metadata=metadata
        )
    return dg.AssetCheckResult(
        passed=False,
        description=" || ".join(f"{name} ({rule}): {summary}" for name, (rule, summary, _) in failures.items()),
        metadata={
            **metadata,
            "failing_files": list(failures),
            "failures": dg.MetadataValue.md(
                pd.concat(
                    [table.assign(file=name) for name, (_, _, table) in failures.items()], ignore_index=True
                ).to_markdown(index=False)
            ),
        },
    )


def _raw_check(asset: dg.AssetsDefinition, source: RawSource) -> dg.AssetChecksDefinition:
    if not source.from_inbox:
        return pandera_asset_check(asset, source.schema)

    @dg.asset_check(
        asset=asset,
        name=f"{source.schema.name}_schema",
        blocking=True,
        description=(
            f"Pandera schemas: the table '{source.schema.name}', then each file against its format's schema "
            f"({', '.join(s.name for s in schemas.INBOX_SCHEMAS.values())}). Blocks downstream assets on failure."
        ),
    )
    def _check(frame: pd.DataFrame) -> dg.AssetCheckResult:
        return validate_inbox(frame, source.schema)

    return _check


# One raw asset and one blocking schema check per row of the sources table.
raw_assets = [_raw_asset(source) for source in RAW_SOURCES]
raw_checks = [_raw_check(asset, source) for asset, source in zip(raw_assets, RAW_SOURCES, strict=True)]


def _tidy_output(tidy: Tidy, rows_in: int, metadata: dict | None = None) -> dg.Output[pd.DataFrame]:
    return table_output(
        tidy.frame,
        {
            "rows_in": rows_in,
            "rows_excluded": tidy.excluded,
            "counts": tidy.counts,
            **(metadata or {}),
        },
    )


def _national_totals(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    sums = frame.groupby("year")[["dem_votes", "rep_votes", "total_votes"]].sum()
    return {str(year): {k: int(v) for k, v in row.items()} for year, row in sums.iterrows()}


@dg.asset(group_name=GROUP, code_version=CODE_VERSION, kinds={"pandas"})
def county_returns(raw_county_returns: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Presidential returns by county and year 2000-2020 (Democratic, Republican, total), quirks fixed and counted.

    Alaska is one unit, ``02000``; rows without a county (statewide write-ins, overseas ballots) are counted in
    ``no_fips_rows_excluded``, so the national totals here are theirs less those rows.
    """
    tidy = tidy_county_returns(raw_county_returns)
    return _tidy_output(tidy, len(raw_county_returns), {"national_totals": _national_totals(tidy.frame)})


@dg.asset(group_name=GROUP, code_version=CODE_VERSION, kinds={"pandas"})
def state_returns(raw_state_returns: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Presidential returns by state and year 1976-2020 (51 units with DC), party lines summed."""
    tidy = tidy_state_returns(raw_state_returns)
    return _tidy_output(tidy, len(raw_state_returns), {"national_totals": _national_totals(tidy.frame)})


@dg.asset(group_name=GROUP, code_version=CODE_VERSION, kinds={"pandas"})
def polls(
    raw_state_polls: pd.DataFrame,
    raw_polls_538: pd.DataFrame,
    raw_polls_2024: pd.DataFrame,
    raw_polls_inbox: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Presidential polls 2000-2024 from the Economist, FiveThirtyEight and Mark Rieke, and the polls inbox, one row
    per poll.

    A poll in two sources counts once (the Economist's copy is kept; a poll of the inbox that a shipped file or an
    earlier inbox file has is left out), a 2024 poll that asked about Biden and Harris counts once (for the candidate
    on the ballot when it ended), polls sponsored by a campaign or party are left out; every row left out is counted
    by source and reason (``election_assets.real.polls``).
    """
    tidy = tidy_polls(raw_state_polls, raw_polls_538, raw_polls_2024, schemas.typed_inbox(raw_polls_inbox))
    per_year = tidy.frame.groupby(["year", "source"]).size()
    return _tidy_output(
        tidy,
        len(raw_state_polls) + len(raw_polls_538) + len(raw_polls_2024) + len(raw_polls_inbox),
        {"polls_per_year": {f"{year} {source}": int(n) for (year, source), n in per_year.items()}},
    )


@dg.asset(group_name=GROUP, code_version=CODE_VERSION, kinds={"pandas"})
def county_demographics(
    raw_election_context: pd.DataFrame,
    raw_ers_unemployment: pd.DataFrame,
    raw_ers_education: pd.DataFrame,
    raw_ers_population: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """County demographics in long format (county_fips, variable, as_of_year, value), county quirks applied.

    ``as_of_year`` is the last year a value describes, so features of election Y use ``as_of_year < Y`` only.
    """
    sources = (raw_election_context, raw_ers_unemployment, raw_ers_education, raw_ers_population)
    tidy = tidy_demographics(*sources)
    coverage = tidy.frame.groupby(["variable", "as_of_year"]).size().rename("counties").reset_index()
    return _tidy_output(
        tidy,
        sum(len(frame) for frame in sources),
        {"coverage": dg.MetadataValue.md(coverage.to_markdown(index=False))},
    )


county_returns_check = pandera_asset_check(county_returns, schemas.COUNTY_RETURNS)
state_returns_check = pandera_asset_check(state_returns, schemas.STATE_RETURNS)
polls_check = pandera_asset_check(polls, schemas.POLLS)
county_demographics_check = pandera_asset_check(county_demographics, schemas.COUNTY_DEMOGRAPHICS)
