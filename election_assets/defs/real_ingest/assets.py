"""Real-mode ingest: one raw asset per shipped source file, and the tidy tables real mode joins on.

Raw assets read a file as published (``election_assets.real.sources.read_source``) from ``ELECTION_REAL_DATA_DIR``
(default: the files shipped in the package); tidy assets fix the join quirks and report, in metadata, how many rows
each quirk touched and how many rows were left out and why. Every table carries its content fingerprint as data
version, and every table has a blocking Pandera check, so a broken file stops the graph where it enters.
"""

import dagster as dg
import pandas as pd

from election_assets.defs.lineage import table_output
from election_assets.defs.real_ingest import schemas
from election_assets.defs.validation import pandera_asset_check
from election_assets.real.sources import (
    POLL_FILES,
    SOURCE_FILES,
    Tidy,
    default_directory,
    read_source,
    tidy_county_returns,
    tidy_demographics,
    tidy_state_polls,
    tidy_state_returns,
)

GROUP = "real_ingest"
CODE_VERSION = "1"

RAW_SCHEMAS = {
    "county_returns": schemas.RAW_COUNTY_RETURNS,
    "state_returns": schemas.RAW_STATE_RETURNS,
    "election_context": schemas.RAW_ELECTION_CONTEXT,
    "ers_unemployment": schemas.RAW_ERS_UNEMPLOYMENT,
    "ers_education": schemas.RAW_ERS_EDUCATION,
    "ers_population": schemas.RAW_ERS_POPULATION,
    "state_polls": schemas.RAW_STATE_POLLS,
}
RAW_DESCRIPTIONS = {
    "county_returns": "MEDSL county presidential returns 2000-2020, long: one row per candidate (and vote mode).",
    "state_returns": "MEDSL state presidential returns 1976-2020, one row per candidate line.",
    "election_context": "MEDSL election context 2018: ACS 2012-16 demographics and past votes by county (no AK).",
    "ers_unemployment": "USDA ERS unemployment and labor force 2000-2019 (BLS LAUS), US, states and counties.",
    "ers_education": "USDA ERS educational attainment 1970-2018 and rural-urban codes, US, states and counties.",
    "ers_population": "USDA ERS population estimates 2010-2019 (Census PEP), US, states and counties.",
    "state_polls": "The Economist's state and national polls 2008, 2012 and 2016 (dem/rep in percent points).",
}


def _files(source: str) -> list[str]:
    return list(POLL_FILES.values()) if source == "state_polls" else [SOURCE_FILES[source].filename]


def _raw_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{source}",
        group_name=GROUP,
        code_version=CODE_VERSION,
        kinds={"pandas", "csv"},
        description=RAW_DESCRIPTIONS[source],
    )
    def _raw() -> dg.Output[pd.DataFrame]:
        directory = default_directory()
        frame = read_source(source, directory)
        return table_output(frame, {"source_directory": str(directory), "source_files": ", ".join(_files(source))})

    return _raw


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


raw_county_returns = _raw_asset("county_returns")
raw_state_returns = _raw_asset("state_returns")
raw_election_context = _raw_asset("election_context")
raw_ers_unemployment = _raw_asset("ers_unemployment")
raw_ers_education = _raw_asset("ers_education")
raw_ers_population = _raw_asset("ers_population")
raw_state_polls = _raw_asset("state_polls")
raw_county_returns_check = pandera_asset_check(raw_county_returns, RAW_SCHEMAS["county_returns"])
raw_state_returns_check = pandera_asset_check(raw_state_returns, RAW_SCHEMAS["state_returns"])
raw_election_context_check = pandera_asset_check(raw_election_context, RAW_SCHEMAS["election_context"])
raw_ers_unemployment_check = pandera_asset_check(raw_ers_unemployment, RAW_SCHEMAS["ers_unemployment"])
raw_ers_education_check = pandera_asset_check(raw_ers_education, RAW_SCHEMAS["ers_education"])
raw_ers_population_check = pandera_asset_check(raw_ers_population, RAW_SCHEMAS["ers_population"])
raw_state_polls_check = pandera_asset_check(raw_state_polls, RAW_SCHEMAS["state_polls"])


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
def state_polls(raw_state_polls: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """State polls 2008-2016, one row per poll; national polls and repeated question versions counted out."""
    tidy = tidy_state_polls(raw_state_polls)
    per_year = tidy.frame.groupby("year").size()
    return _tidy_output(tidy, len(raw_state_polls), {"polls_per_year": {str(y): int(n) for y, n in per_year.items()}})


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
state_polls_check = pandera_asset_check(state_polls, schemas.STATE_POLLS)
county_demographics_check = pandera_asset_check(county_demographics, schemas.COUNTY_DEMOGRAPHICS)
