"""Pandera schemas of the real-mode tables: the raw files as read, and the tidy tables real mode joins on.

Raw schemas hold each file to what its publisher promises (types, ranges, one row per key) without fixing anything;
the tidy schemas hold the contract of ``election_assets.real.sources`` (one row per key, 5-digit FIPS, votes that
add up). Each runs as a blocking asset check through ``defs/checks.py``.
"""

import numpy as np
import pandas as pd
import pandera.pandas as pa

from election_assets.real.polls import (
    GEOGRAPHIES,
    INBOX_FORMATS,
    POLL_YEARS,
    POPULATIONS,
    TABLE_SOURCES,
    inbox_file_frames,
)
from election_assets.real.sources import DEMOGRAPHIC_VARIABLES, PERCENT_VARIABLES, POLL_FILES, STATE_PO

COUNTY_RETURN_YEARS = list(range(2000, 2021, 4))
STATE_RETURN_YEARS = list(range(1976, 2021, 4))
STATES_PER_YEAR = len(STATE_PO)

_RAW_FIPS = pa.Check.str_matches(r"^\d{1,5}$")
_FIPS = pa.Check.str_matches(r"^\d{5}$")
_NON_NEGATIVE = pa.Check.ge(0)
_PERCENT = pa.Check.in_range(0.0, 100.0)
_STATE = pa.Check.isin(sorted(STATE_PO))
_RUCC = pa.Check.isin(list(range(1, 10)))  # USDA rural-urban continuum codes


def _count(nullable: bool = True) -> pa.Column:
    """A count of votes or people: a number, never negative."""
    return pa.Column(float, _NON_NEGATIVE, nullable=nullable)


def _regex(dtype, check: pa.Check, nullable: bool = True) -> pa.Column:
    return pa.Column(dtype, check, nullable=nullable, regex=True)


RAW_COUNTY_RETURNS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(COUNTY_RETURN_YEARS)),
        "state": pa.Column(str),
        "state_po": pa.Column(str, _STATE, nullable=True),
        "county_name": pa.Column(str),
        "county_fips": pa.Column(str, _RAW_FIPS, nullable=True),
        "candidate": pa.Column(str),
        "party": pa.Column(str),
        "candidatevotes": _count(),
        "totalvotes": _count(),
        "mode": pa.Column(str),
    },
    unique=["year", "state", "county_name", "county_fips", "candidate", "party", "mode"],
    name="raw_county_returns",
)

RAW_STATE_RETURNS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(STATE_RETURN_YEARS)),
        "state_po": pa.Column(str, _STATE),
        "state_fips": pa.Column(str, pa.Check.str_matches(r"^\d{1,2}$")),
        "party_simplified": pa.Column(str),
        "candidatevotes": pa.Column("int64", _NON_NEGATIVE),
        "totalvotes": pa.Column("int64", _NON_NEGATIVE),
    },
    unique=["year", "state_po", "candidate", "party_detailed", "writein"],
    name="raw_state_returns",
)

RAW_ELECTION_CONTEXT = pa.DataFrameSchema(
    {
        "fips": pa.Column(str, _RAW_FIPS, unique=True),
        "state": pa.Column(str),
        r".*_pct$": _regex(float, _PERCENT),
        "median_hh_inc": pa.Column(float, pa.Check.gt(0), nullable=True),
        "total_population": _count(),
        "ruralurban_cc": pa.Column(float, _RUCC, nullable=True),
    },
    name="raw_election_context",
)

RAW_ERS_UNEMPLOYMENT = pa.DataFrameSchema(
    {
        "FIPStxt": pa.Column(str, _RAW_FIPS, unique=True),
        "Stabr": pa.Column(str),
        r"^Unemployment_rate_\d{4}$": _regex(float, _PERCENT),
        r"^(Civilian_labor_force|Employed|Unemployed)_\d{4}$": _regex(float, _NON_NEGATIVE),
    },
    name="raw_ers_unemployment",
)

RAW_ERS_EDUCATION = pa.DataFrameSchema(
    {
        "FIPS Code": pa.Column(str, _RAW_FIPS, unique=True),
        "State": pa.Column(str),
        r"^Percent of adults .*": _regex(float, _PERCENT),
        r"^(Less than|High school|Some college|Four years|Bachelor).*": _regex(float, _NON_NEGATIVE),
        r"^20[01]3 Rural-urban Continuum Code$": _regex(float, _RUCC),
    },
    name="raw_ers_education",
)

RAW_ERS_POPULATION = pa.DataFrameSchema(
    {
        "FIPStxt": pa.Column(str, _RAW_FIPS, unique=True),
        "State": pa.Column(str),
        r"^POP_ESTIMATE_\d{4}$": _regex("int64", _NON_NEGATIVE, nullable=False),
    },
    name="raw_ers_population",
)

RAW_STATE_POLLS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(list(POLL_FILES))),
        "state": pa.Column(str, pa.Check.isin([*sorted(STATE_PO), "--"])),
        "pollster": pa.Column(str),
        "start_date": pa.Column("datetime64[ns]"),
        "end_date": pa.Column("datetime64[ns]"),
        "sample_size": pa.Column("Int64", pa.Check.gt(0), nullable=True),
        "dem": pa.Column(float, _PERCENT),
        "rep": pa.Column(float, _PERCENT),
        "population": pa.Column(str),
        "partisan": pa.Column(str, pa.Check.isin(["Nonpartisan", "Pollster", "Sponsor"]), nullable=True),
        "affiliation": pa.Column(str, pa.Check.isin(["Dem", "Rep", "Other"]), nullable=True),
        "question_iteration": pa.Column("Int64", pa.Check.ge(1), nullable=True),
    },
    checks=[pa.Check(lambda f: f["end_date"] >= f["start_date"], name="end_date on or after start_date")],
    strict=True,
    name="raw_state_polls",
)

RAW_POLLS_538 = pa.DataFrameSchema(
    {
        "poll_id": pa.Column("int64", unique=True),
        "question_id": pa.Column("int64", unique=True),
        "year": pa.Column("int64", pa.Check.isin(list(range(2000, 2021, 4)))),
        "location": pa.Column(str, pa.Check.str_matches(r"^(US|[A-Z]{2}|M[12]|N[123])$")),
        "type_simple": pa.Column(str, pa.Check.eq("Pres-G")),
        "pollster": pa.Column(str),
        "partisan": pa.Column(str, pa.Check.isin(["D", "R", "I", "REP,DEM"]), nullable=True),
        "polldate": pa.Column("datetime64[ns]"),
        "samplesize": pa.Column(float, pa.Check.gt(0)),
        "cand1_party": pa.Column(str, pa.Check.eq("DEM")),
        "cand1_pct": pa.Column(float, _PERCENT),
        "cand2_party": pa.Column(str, pa.Check.eq("REP")),
        "cand2_pct": pa.Column(float, _PERCENT),
        "cand3_pct": pa.Column(float, _PERCENT, nullable=True),
        "electiondate": pa.Column("datetime64[ns]"),
        "comment": pa.Column(str, nullable=True),
    },
    checks=[
        pa.Check(lambda f: f["polldate"] <= f["electiondate"], name="polldate on or before electiondate"),
        pa.Check(lambda f: f["cand1_pct"] + f["cand2_pct"] <= 100.0, name="cand1_pct + cand2_pct <= 100"),
    ],
    name="raw_polls_538",
)

RAW_POLLS_2024 = pa.DataFrameSchema(
    {
        "poll_id": pa.Column("int64"),
        "state": pa.Column(str),
        "K": pa.Column("int64", pa.Check.gt(0)),
        "Y": pa.Column("int64", _NON_NEGATIVE),
        "pollster": pa.Column(str),
        "end_date": pa.Column(
            "datetime64[ns]", pa.Check.in_range(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-11-05"))
        ),
        "group": pa.Column(str, pa.Check.isin(["lv", "rv", "v", "a"])),
        "candidate_sponsored": pa.Column(str, pa.Check.isin(["DEM", "REP", "IND"]), nullable=True),
        "post_announcement": pa.Column(bool),
        "internal": pa.Column("int64", pa.Check.isin([-1, 0, 1])),
        "dem_candidate": pa.Column(str, pa.Check.isin(["Biden", "Harris"])),
    },
    checks=[pa.Check(lambda f: f["Y"] <= f["K"], name="Y <= K")],
    unique=["poll_id", "dem_candidate"],
    name="raw_polls_2024",
)


# The polls inbox (``polls.read_polls_inbox``): its table as read, every cell text, after the columns saying which
# file, format and row each row is.
RAW_POLLS_INBOX = pa.DataFrameSchema(
    {
        "source_file": pa.Column(str, pa.Check.str_endswith(".csv")),
        "source_format": pa.Column(str, pa.Check.isin(list(INBOX_FORMATS))),
        "source_row": pa.Column("int64", _NON_NEGATIVE),
    },
    unique=["source_file", "source_row"],
    name="raw_polls_inbox",
)


def _inbox_schema(schema: pa.DataFrameSchema, name: str, columns: dict[str, dict]) -> pa.DataFrameSchema:
    """A shipped poll file's schema for one inbox file in its format: the file's text coerced to the schema's types
    (a value that is not a number or a date fails on its row and column like any other rule), ``columns`` updated."""
    inbox = schema.update_columns(columns).set_name(name)
    inbox.coerce = True
    return inbox


# Each inbox file is held to the schema of the shipped file of its format, but for what a new file may hold: any
# election year with polls (2000-2024) in FiveThirtyEight's format, and Rieke's ``post_announcement`` as written.
INBOX_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "fivethirtyeight": _inbox_schema(
        RAW_POLLS_538, "raw_polls_inbox_538", {"year": {"checks": [pa.Check.isin(POLL_YEARS)]}}
    ),
    "rieke": _inbox_schema(
        RAW_POLLS_2024,
        "raw_polls_inbox_2024",
        {"post_announcement": {"dtype": str, "checks": [pa.Check.str_matches(r"(?i)^(true|false)$")]}},
    ),
}


def typed_inbox(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The inbox's rows by format, each file's text coerced to its format's types (``INBOX_SCHEMAS``), with
    ``source_file`` and ``source_row``; files in name order. For rows that passed the inbox's check."""
    typed: dict[str, list[pd.DataFrame]] = {name: [] for name in INBOX_FORMATS}
    for source_file, source_format, frame in inbox_file_frames(raw):
        frame = INBOX_SCHEMAS[source_format].coerce_dtype(frame)
        typed[source_format].append(frame.assign(source_file=source_file, source_row=frame.index))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in typed.items() if frames}


def _votes_add_up(frame: pd.DataFrame) -> pd.Series:
    return frame["dem_votes"] + frame["rep_votes"] <= frame["total_votes"]


_VOTES = {
    "dem_votes": pa.Column("int64", _NON_NEGATIVE),
    "rep_votes": pa.Column("int64", _NON_NEGATIVE),
    "total_votes": pa.Column("int64", _NON_NEGATIVE),
}
_VOTES_ADD_UP = pa.Check(_votes_add_up, name="dem_votes + rep_votes <= total_votes")

COUNTY_RETURNS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(COUNTY_RETURN_YEARS)),
        "county_fips": pa.Column(str, _FIPS),
        "state_po": pa.Column(str, _STATE),
        "county_name": pa.Column(str),
        **_VOTES,
    },
    checks=[_VOTES_ADD_UP],
    unique=["year", "county_fips"],
    strict=True,
    name="county_returns",
)

STATE_RETURNS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(STATE_RETURN_YEARS)),
        "state_po": pa.Column(str, _STATE),
        "state_fips": pa.Column(str, pa.Check.str_matches(r"^\d{2}$")),
        **_VOTES,
    },
    checks=[
        _VOTES_ADD_UP,
        pa.Check(
            lambda f: f.groupby("year")["state_po"].transform("nunique") == STATES_PER_YEAR,
            name=f"{STATES_PER_YEAR} states (with DC) every year",
        ),
    ],
    unique=["year", "state_po"],
    strict=True,
    name="state_returns",
)


def _dates_in_order(frame: pd.DataFrame) -> pd.Series:
    start, median, end = frame["start_date"], frame["median_date"], frame["end_date"]
    return (start.isna() | (start <= median)) & (end.isna() | (median <= end))


POLLS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(POLL_YEARS)),
        "geography": pa.Column(str, pa.Check.isin(list(GEOGRAPHIES))),
        "start_date": pa.Column("datetime64[ns]", nullable=True),
        "end_date": pa.Column("datetime64[ns]", nullable=True),
        "median_date": pa.Column("datetime64[ns]"),
        "pollster": pa.Column(str),
        "population": pa.Column(str, pa.Check.isin(list(POPULATIONS)), nullable=True),
        "sample_size": pa.Column("Int64", pa.Check.gt(0), nullable=True),
        "dem_share": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
        "source": pa.Column(str, pa.Check.isin(list(TABLE_SOURCES))),
        "source_poll_id": pa.Column(str),
    },
    checks=[
        pa.Check(_dates_in_order, name="start_date <= median_date <= end_date where known"),
        pa.Check(lambda f: f["median_date"].dt.year == f["year"], name="median_date in the election year"),
    ],
    unique=["source", "source_poll_id"],
    strict=True,
    name="polls",
)


def _percent_in_range(frame: pd.DataFrame) -> pd.Series:
    return ~frame["variable"].isin(PERCENT_VARIABLES) | frame["value"].between(0.0, 100.0)


COUNTY_DEMOGRAPHICS = pa.DataFrameSchema(
    {
        "county_fips": pa.Column(str, _FIPS),
        "variable": pa.Column(str, pa.Check.isin(list(DEMOGRAPHIC_VARIABLES))),
        "as_of_year": pa.Column("int64", pa.Check.in_range(1990, 2019)),
        "value": pa.Column("float64", [pa.Check(np.isfinite, name="finite"), _NON_NEGATIVE]),
    },
    checks=[pa.Check(_percent_in_range, name="percentages within 0-100")],
    unique=["county_fips", "variable", "as_of_year"],
    strict=True,
    name="county_demographics",
)
