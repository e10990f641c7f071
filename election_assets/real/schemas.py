"""Pandera schemas of the real-mode tables: the raw files as read, and the tidy tables real mode joins on.

Raw schemas hold each file to what its publisher promises (types, ranges, one row per key) without fixing anything;
the tidy schemas hold the contract of ``election_assets.real.sources`` (one row per key, 5-digit FIPS, votes that
add up). Each runs as a blocking asset check through ``defs/checks.py``.
"""

import numpy as np
import pandas as pd
import pandera.pandas as pa

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
    },
    checks=[pa.Check(lambda f: f["end_date"] >= f["start_date"], name="end_date on or after start_date")],
    strict=True,
    name="raw_state_polls",
)


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

STATE_POLLS = pa.DataFrameSchema(
    {
        "year": pa.Column("int64", pa.Check.isin(list(POLL_FILES))),
        "state_po": pa.Column(str, _STATE),
        "pollster": pa.Column(str),
        "end_date": pa.Column("datetime64[ns]"),
        "sample_size": pa.Column("Int64", pa.Check.gt(0), nullable=True),
        "dem": pa.Column(float, _PERCENT),
        "rep": pa.Column(float, _PERCENT),
    },
    checks=[pa.Check(lambda f: f["dem"] + f["rep"] <= 100.0, name="dem + rep <= 100")],
    strict=True,
    name="state_polls",
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
