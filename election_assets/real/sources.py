"""Real-mode sources: read the shipped files as they are, and tidy them into the tables real mode joins on.

Pure pandas and NumPy (no Dagster), so the quirks of each file are tested on small slices without a pipeline.
``read_source`` keeps the raw semantics of a file (FIPS codes stay strings as written); the ``tidy_*`` functions
fix the join quirks described in ``real/sources/README.md`` and return a ``Tidy``:
the table plus a count for every quirk fixed and every row left out, by reason. Nothing is dropped silently.

Count keys: every count is a number of input rows. Keys ending in ``_excluded`` are rows that are not in the output
(``Tidy.excluded`` adds them up); the other keys are rows that were fixed, merged or summed and are in the output,
and ``rows_aggregated`` / ``counties`` say how many input rows or units the output is made of. ``tidy_demographics``
reads four files, so its keys carry the file's name (``"ers_education.bedford_city_merged"``), and its
``missing_value_cells`` count empty cells of a wide file, which become no long row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# The 50 states and DC by postal code and FIPS code: one table, in core (the live API reads it too), re-exported.
from election_assets.core.states import STATE_FIPS, STATE_PO, STATE_PO_BY_FIPS  # noqa: F401

# --- The files ------------------------------------------------------------------------------------------------

# The source files shipped inside the package (their origins and licences: real/sources/README.md); the pipeline
# reads them from ``ELECTION_REAL_DATA_DIR`` when that is set (the ``storage`` resource's ``real_data_dir``).
SHIPPED_REAL_DATA_DIR = Path(__file__).resolve().parent / "sources"


@dataclass(frozen=True)
class _SourceFile:
    filename: str
    fips_column: str | None  # read as text (None: the file has no FIPS codes)
    encoding: str = "utf-8"
    thousands: str | None = None
    dates: Mapping[str, str] = field(default_factory=dict)  # date column -> its format, parsed on reading


SOURCE_FILES: dict[str, _SourceFile] = {
    "county_returns": _SourceFile("medsl_countypres_2000_2020.csv.gz", "county_fips"),
    "state_returns": _SourceFile("medsl_state_president_1976_2020.csv.gz", "state_fips"),
    "election_context": _SourceFile("medsl_election_context_2018.csv.gz", "fips"),
    "ers_unemployment": _SourceFile("usda_ers_unemployment_2000_2019.csv.gz", "FIPStxt", thousands=","),
    "ers_education": _SourceFile("usda_ers_education_1970_2018.csv.gz", "FIPS Code", "latin-1", ","),
    "ers_population": _SourceFile("usda_ers_population_2010_2019.csv.gz", "FIPStxt", "latin-1", ","),
    # FiveThirtyEight's presidential general-election polls of the last ~3 weeks, 2000-2020: one row per poll.
    "polls_538": _SourceFile(
        "fivethirtyeight_pres_general_polls_2000_2020.csv.gz",
        None,
        dates={"polldate": "%m/%d/%Y", "electiondate": "%m/%d/%Y"},
    ),
    # Mark Rieke's 2024 polls: one row per (poll, Democratic candidate asked about).
    "polls_2024": _SourceFile("rieke_president_polls_2024.csv.gz", None, dates={"end_date": "%Y-%m-%d"}),
}
# The Economist's poll files: one per election, each naming the candidates' columns after the candidates.
POLL_FILES: dict[int, str] = {year: f"economist_state_polls_{year}.csv.gz" for year in (2008, 2012, 2016)}
POLL_CANDIDATES: dict[int, tuple[str, str]] = {
    2008: ("obama", "mccain"),
    2012: ("obama", "romney"),
    2016: ("clinton", "trump"),
}
POLL_DATE_FORMATS: dict[int, str] = {2008: "%m/%d/%y", 2012: "%m/%d/%y", 2016: "%Y-%m-%d"}
POLL_COLUMNS = (
    "year",
    "state",
    "pollster",
    "start_date",
    "end_date",
    "sample_size",
    "dem",
    "rep",
    "population",
    "partisan",
    "affiliation",
    "question_iteration",
)
# Columns only the 2016 file has (HuffPost Pollster's): NA in the 2008 and 2012 rows.
POLL_COLUMNS_2016 = {"partisan": "partisan", "affiliation": "affiliation", "question.iteration": "question_iteration"}
NATIONAL_POLL = "--"
SOURCE_NAMES: tuple[str, ...] = (*SOURCE_FILES, "state_polls")


def source_files(name: str) -> tuple[str, ...]:
    """The file names a source is read from."""
    return tuple(POLL_FILES.values()) if name == "state_polls" else (SOURCE_FILES[name].filename,)


# --- Geography shared by every tidy function ------------------------------------------------------------------

# Alaska reports by house district in the returns and by borough in the ERS files, which do not nest: real mode
# treats the whole state as one unit, coded like the ERS state row.
ALASKA_FIPS = "02000"
ALASKA_PREFIX = "02"
DC_FIPS = "11001"
PUERTO_RICO_PREFIX = "72"
# In the MEDSL files 36000 is Kansas City, MO (reported apart from Jackson County); in the ERS files it is New York.
KANSAS_CITY_FIPS = "36000"
JACKSON_COUNTY_MO_FIPS = "29095"
# Counties renamed or merged since 2000: old code -> (current code, count key).
COUNTY_RECODES: dict[str, tuple[str, str]] = {
    "46113": ("46102", "oglala_lakota_recoded"),  # Shannon County, SD, renamed Oglala Lakota in 2015
    "51515": ("51019", "bedford_city_merged"),  # Bedford city, VA, merged into Bedford County in 2013
}
KANSAS_CITY = "kansas_city_merged"
ALASKA_DISTRICTS = "alaska_districts_collapsed"


def normalize_fips(codes: pd.Series, width: int = 5) -> pd.Series:
    """FIPS codes as zero-padded strings of ``width`` digits (``1001`` -> ``"01001"``); gaps stay NaN.

    Accepts integers, strings and floats read from a CSV (``"1001.0"``).
    """
    text = codes.astype("string").str.strip().str.removesuffix(".0")
    padded = text.str.zfill(width).astype(object)
    return padded.where(text.notna(), np.nan)


def canonical_fips(fips: pd.Series, kansas_city_coded: bool, alaska_reason: str) -> tuple[pd.Series, pd.Series]:
    """The county unit each 5-digit code belongs to now, and why it moved (``""`` where it did not).

    ``kansas_city_coded``: the file is a MEDSL file, where 36000 means Kansas City, MO (merged into Jackson County).
    Every Alaskan code other than the state row moves to ``ALASKA_FIPS`` with ``alaska_reason``.
    """
    target = fips.copy()
    reason = pd.Series("", index=fips.index, dtype=object)
    moves = [(fips.str.startswith(ALASKA_PREFIX, na=False) & fips.ne(ALASKA_FIPS), ALASKA_FIPS, alaska_reason)]
    if kansas_city_coded:
        moves.append((fips.eq(KANSAS_CITY_FIPS), JACKSON_COUNTY_MO_FIPS, KANSAS_CITY))
    moves += [(fips.eq(old), new, why) for old, (new, why) in COUNTY_RECODES.items()]
    for mask, new, why in moves:
        target[mask] = new
        reason[mask] = why
    return target, reason


def _count_reasons(reason: pd.Series, counts: dict[str, int], prefix: str = "", keys: tuple[str, ...] = ()) -> None:
    """Add the rows per non-empty reason to ``counts`` (``keys`` are reported even when zero)."""
    tally = reason[reason.ne("")].value_counts()
    for key in sorted(set(keys) | set(tally.index)):
        counts[prefix + key] = int(tally.get(key, 0))


@dataclass(frozen=True)
class Tidy:
    """A tidy table and, by reason, the rows of its input that were fixed (kept) or left out (``*_excluded``)."""

    frame: pd.DataFrame
    counts: dict[str, int]

    @property
    def excluded(self) -> int:
        """Input rows that are not in the output, all reasons together."""
        return sum(count for key, count in self.counts.items() if key.endswith("_excluded"))


# --- Reading --------------------------------------------------------------------------------------------------


def _read_polls(directory: Path) -> pd.DataFrame:
    frames = []
    for year, filename in POLL_FILES.items():
        # utf-8-sig: the 2008 file starts with a byte-order mark that would otherwise stick to the first header.
        raw = pd.read_csv(directory / filename, encoding="utf-8-sig")
        raw.columns = raw.columns.str.strip()
        dem, rep = POLL_CANDIDATES[year]
        date_format = POLL_DATE_FORMATS[year]
        frames.append(
            pd.DataFrame(
                {
                    "year": np.int64(year),
                    "state": raw["state"],
                    "pollster": raw["pollster"],
                    "start_date": pd.to_datetime(raw["start.date"], format=date_format),
                    "end_date": pd.to_datetime(raw["end.date"], format=date_format),
                    "sample_size": raw["number.of.observations"].astype("Int64"),
                    "dem": raw[dem].astype("float64"),
                    "rep": raw[rep].astype("float64"),
                    "population": raw["population"],
                    **{
                        ours: raw[theirs] if theirs in raw.columns else pd.Series(pd.NA, index=raw.index, dtype=object)
                        for theirs, ours in POLL_COLUMNS_2016.items()
                    },
                }
            ).astype({"question_iteration": "Int64"})
        )
    return pd.concat(frames, ignore_index=True)[list(POLL_COLUMNS)]


def read_source(name: str, directory: str | Path = SHIPPED_REAL_DATA_DIR) -> pd.DataFrame:
    """One source file as a DataFrame, with its raw semantics: long or wide as published, FIPS codes as strings.

    Handles what is about reading, not meaning: the file's encoding, thousands separators and spaces around
    headers, and dates (parsed with the format the file writes them in). ``state_polls`` concatenates the three
    Economist files with an int ``year`` column, the candidates' columns renamed to ``dem`` / ``rep``, the dates
    parsed (each year writes them differently) and ``population`` (``"Likely Voters - Democrat"`` is a party
    subgroup of a poll); 2016's ``partisan``, ``affiliation`` and ``question.iteration`` (``question_iteration``)
    are NA in 2008 and 2012. Its columns are ``POLL_COLUMNS``. ``polls_538`` and ``polls_2024`` are the files as
    published, dates parsed. ``directory`` defaults to the files shipped inside the package.
    """
    if name not in SOURCE_NAMES:
        raise ValueError(f"unknown real source {name!r}; expected one of {', '.join(SOURCE_NAMES)}")
    folder = Path(directory)
    if name == "state_polls":
        return _read_polls(folder)
    spec = SOURCE_FILES[name]
    dtype = {spec.fips_column: str} if spec.fips_column else None
    frame = pd.read_csv(folder / spec.filename, encoding=spec.encoding, thousands=spec.thousands, dtype=dtype)
    frame.columns = frame.columns.str.strip()
    for column, date_format in spec.dates.items():
        frame[column] = pd.to_datetime(frame[column], format=date_format)
    return frame


# --- County returns -------------------------------------------------------------------------------------------

COUNTY_RETURN_COLUMNS = ("year", "county_fips", "state_po", "county_name", "dem_votes", "rep_votes", "total_votes")
TOTAL_MODE = "TOTAL"
_VOTE_DTYPES = {"year": "int64", "dem_votes": "int64", "rep_votes": "int64", "total_votes": "int64"}
DEMOCRAT = "DEMOCRAT"
REPUBLICAN = "REPUBLICAN"


def tidy_county_returns(raw: pd.DataFrame) -> Tidy:
    """One row per (year, county) from MEDSL's long county file: Democratic, Republican and total votes.

    Quirks, each counted in rows of ``raw``: FIPS zero-padded; DC 2020 has no FIPS (``dc_fips_filled``);
    other rows without FIPS are statewide pseudo-units (CT statewide write-ins, Maine UOCAVA, Rhode Island's federal
    precinct) that no county can take (``no_fips_rows_excluded``); in 2020 a county's TOTAL rows win over its
    vote-mode rows (``vote_mode_rows_superseded_excluded``), otherwise its modes are summed
    (``vote_mode_rows_summed``); NA candidate votes count as 0 (``missing_candidatevotes``); Kansas City (36000)
    goes into Jackson County, MO, Bedford city into Bedford County, 46113 becomes 46102, and Alaska's house districts
    become the one unit ``02000``. ``state_po`` follows from the county's FIPS (Alaska's district 99 has none in
    2000-2016: ``state_po_filled``). A unit's total is its reported ``totalvotes``, or the sum of its candidates where
    that is missing or smaller (``totalvotes_missing_rows``, ``totalvotes_below_candidate_sum_rows``).
    ``rows_aggregated`` is the number of rows of ``raw`` that went into the output.
    """
    counts: dict[str, int] = {}
    frame = raw.assign(fips=normalize_fips(raw["county_fips"]))
    dc = frame["fips"].isna() & (frame["state_po"].eq("DC") | frame["state"].eq("DISTRICT OF COLUMBIA"))
    frame.loc[dc, "fips"] = DC_FIPS
    counts["dc_fips_filled"] = int(dc.sum())
    no_fips = frame["fips"].isna()
    counts["no_fips_rows_excluded"] = int(no_fips.sum())
    frame = frame.loc[~no_fips]

    is_total = frame["mode"].eq(TOTAL_MODE)
    has_total = is_total.groupby([frame["year"], frame["fips"]]).transform("any")
    superseded = has_total & ~is_total
    counts["vote_mode_rows_superseded_excluded"] = int(superseded.sum())
    frame = frame.loc[~superseded]
    counts["vote_mode_rows_summed"] = int(frame["mode"].ne(TOTAL_MODE).sum())

    counts["missing_candidatevotes"] = int(frame["candidatevotes"].isna().sum())
    votes = frame["candidatevotes"].fillna(0.0)
    frame = frame.assign(
        votes=votes,
        dem=votes.where(frame["party"].eq(DEMOCRAT), 0.0),
        rep=votes.where(frame["party"].eq(REPUBLICAN), 0.0),
    )

    # A reported unit's total is repeated on each of its rows (vote-mode rows carry the county total).
    unit = [frame["year"], frame["fips"]]
    reported = frame.groupby(unit)["totalvotes"].transform("max")
    candidates = frame.groupby(unit)["votes"].transform("sum")
    counts["totalvotes_missing_rows"] = int(reported.isna().sum())
    counts["totalvotes_below_candidate_sum_rows"] = int((reported < candidates).sum())
    unit_total = np.fmax(reported, candidates)
    # Count the unit total once per unit: on its first row.
    first_of_unit = ~frame.duplicated(["year", "fips"])
    frame = frame.assign(total=unit_total.where(first_of_unit, 0.0))

    canonical, reason = canonical_fips(frame["fips"], kansas_city_coded=True, alaska_reason=ALASKA_DISTRICTS)
    _count_reasons(reason, counts, keys=(ALASKA_DISTRICTS, KANSAS_CITY, *(k for _, k in COUNTY_RECODES.values())))
    # The merged unit keeps the name of the county it merges into (Alaska: the state).
    counts["state_po_filled"] = int(frame["state_po"].isna().sum())
    frame = frame.assign(
        county_fips=canonical, own=frame["fips"].eq(canonical), state_po=canonical.str[:2].map(STATE_PO_BY_FIPS)
    )
    frame.loc[canonical.eq(ALASKA_FIPS), "county_name"] = "ALASKA"
    frame = frame.sort_values("own", ascending=False, kind="stable")
    grouped = frame.groupby(["year", "county_fips"], sort=True)
    out = grouped.agg(
        state_po=("state_po", "first"),
        county_name=("county_name", "first"),
        dem_votes=("dem", "sum"),
        rep_votes=("rep", "sum"),
        total_votes=("total", "sum"),
    ).reset_index()
    out = out.astype(_VOTE_DTYPES)
    counts["rows_aggregated"] = len(frame)
    return Tidy(out[list(COUNTY_RETURN_COLUMNS)], counts)


# --- State returns --------------------------------------------------------------------------------------------

STATE_RETURN_COLUMNS = ("year", "state_po", "state_fips", "dem_votes", "rep_votes", "total_votes")


def tidy_state_returns(raw: pd.DataFrame) -> Tidy:
    """One row per (year, state) from MEDSL's state file; a party's votes are the sum of its lines.

    Parties are MEDSL's ``party_simplified``, so Minnesota's DFL counts as Democratic; where a party has more than
    one line in a state (write-in lines, a second ticket), they are summed (``party_lines_summed``: the lines
    beyond the first). ``total_votes`` is the reported total, or the candidates' sum where that is larger
    (``totalvotes_below_candidate_sum_rows``). Rows of unknown states are ``unknown_state_excluded``.
    """
    counts: dict[str, int] = {}
    unknown = ~raw["state_po"].isin(STATE_PO)
    counts["unknown_state_excluded"] = int(unknown.sum())
    frame = raw.loc[~unknown]
    party = frame["party_simplified"]
    votes = frame["candidatevotes"].fillna(0).astype("float64")
    frame = frame.assign(
        dem=votes.where(party.eq(DEMOCRAT), 0.0),
        rep=votes.where(party.eq(REPUBLICAN), 0.0),
        votes=votes,
        state_fips=normalize_fips(frame["state_fips"], width=2),
    )
    lines = frame.loc[party.isin([DEMOCRAT, REPUBLICAN])].groupby(["year", "state_po", "party_simplified"]).size()
    counts["party_lines_summed"] = int((lines - 1).sum())
    grouped = frame.groupby(["year", "state_po"], sort=True)
    out = grouped.agg(
        state_fips=("state_fips", "first"),
        dem_votes=("dem", "sum"),
        rep_votes=("rep", "sum"),
        reported=("totalvotes", "max"),
        candidates=("votes", "sum"),
    ).reset_index()
    below = out["reported"] < out["candidates"]
    counts["totalvotes_below_candidate_sum_rows"] = int(grouped.size().to_numpy()[below.to_numpy()].sum())
    out["total_votes"] = np.fmax(out["reported"], out["candidates"])
    out = out.astype(_VOTE_DTYPES)
    counts["rows_aggregated"] = len(frame)
    return Tidy(out[list(STATE_RETURN_COLUMNS)], counts)


# --- Demographics ---------------------------------------------------------------------------------------------

DEMOGRAPHIC_COLUMNS = ("county_fips", "variable", "as_of_year", "value")
ALASKA_BOROUGHS = "alaska_borough_rows_excluded"


@dataclass(frozen=True)
class _Measures:
    """How one wide file becomes long rows.

    ``values``: column -> (variable, as_of_year). ``additive``: count columns summed when rows merge (Bedford city
    into Bedford County); ``percents``: value column -> (part, whole) count columns it is recomputed from, as
    ``100 * part / sum(whole)``. Both apply only where more than one merging row has the counts, so a published
    value is never replaced by a recomputation of itself. Without ``additive`` a file cannot merge rows, and a row
    that would merge is left out.
    """

    values: Mapping[str, tuple[str, int]]
    additive: tuple[str, ...] = ()
    percents: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


def _unemployment_measures() -> _Measures:
    years = range(2000, 2020)
    values = {f"Unemployment_rate_{y}": ("unemployment_rate", y) for y in years}
    values |= {f"Civilian_labor_force_{y}": ("labor_force", y) for y in years}
    percents = {f"Unemployment_rate_{y}": (f"Unemployed_{y}", (f"Civilian_labor_force_{y}",)) for y in years}
    additive = tuple(f"{c}_{y}" for y in years for c in ("Civilian_labor_force", "Unemployed"))
    return _Measures(values, additive, percents)


def _education_measures() -> _Measures:
    values: dict[str, tuple[str, int]] = {
        "2003 Rural-urban Continuum Code": ("rucc", 2003),
        "2013 Rural-urban Continuum Code": ("rucc", 2013),
    }
    percents: dict[str, tuple[str, tuple[str, ...]]] = {}
    additive: list[str] = []
    for period, as_of in (("1990", 1990), ("2000", 2000), ("2014-18", 2018)):
        groups = tuple(
            f"{level}, {period}"
            for level in (
                "Less than a high school diploma",
                "High school diploma only",
                "Some college or associate's degree",
                "Bachelor's degree or higher",
            )
        )
        less_hs = f"Percent of adults with less than a high school diploma, {period}"
        bachelor = f"Percent of adults with a bachelor's degree or higher, {period}"
        values |= {less_hs: ("pct_less_hs", as_of), bachelor: ("pct_bachelor_plus", as_of)}
        percents |= {less_hs: (groups[0], groups), bachelor: (groups[3], groups)}
        additive += groups
    return _Measures(values, tuple(additive), percents)


def _population_measures() -> _Measures:
    columns = tuple(f"POP_ESTIMATE_{y}" for y in range(2010, 2020))
    return _Measures({c: ("population", int(c[-4:])) for c in columns}, columns, {})


CONTEXT_ACS = ("white_pct", "black_pct", "hispanic_pct", "foreignborn_pct", "age65andolder_pct", "median_hh_inc")
CONTEXT_ACS_AS_OF = 2016  # ACS 2012-16
CONTEXT_RURAL_AS_OF = 2010  # Census 2010
DEMOGRAPHIC_VARIABLES = (
    "unemployment_rate",
    "labor_force",
    "population",
    "pct_less_hs",
    "pct_bachelor_plus",
    "rucc",
    *CONTEXT_ACS,
    "lesscollege_pct",
    "rural_pct",
)
# The variables measured in percent (0-100); the others are counts, dollars or a code.
PERCENT_VARIABLES = tuple(v for v in DEMOGRAPHIC_VARIABLES if v.endswith("_pct") or v.startswith(("pct_", "unemp")))


def _context_measures() -> _Measures:
    values = {column: (column, CONTEXT_ACS_AS_OF) for column in (*CONTEXT_ACS, "lesscollege_pct")}
    return _Measures(values | {"rural_pct": ("rural_pct", CONTEXT_RURAL_AS_OF)})


def _county_rows(frame: pd.DataFrame, source: str, kansas_city_coded: bool, counts: dict[str, int]) -> pd.DataFrame:
    """The county rows of one demographic file, with ``county_fips`` canonical and ``own`` (not moved there).

    Left out and counted under ``{source}.``: Kansas City (MEDSL only, ``kansas_city_excluded``), state and national
    rows (codes ending in 000, ``state_and_national_rows_excluded``) except Alaska's, which is the Alaska unit,
    Alaska's boroughs (collapsed into that row, ``alaska_borough_rows_excluded``) and Puerto Rico
    (``puerto_rico_rows_excluded``, no election returns).
    """
    fips = normalize_fips(frame[SOURCE_FILES[source].fips_column])
    canonical, reason = canonical_fips(fips, kansas_city_coded, alaska_reason=ALASKA_BOROUGHS)
    kansas_city = reason.eq(KANSAS_CITY)
    state_rows = fips.str.endswith("000") & fips.ne(ALASKA_FIPS) & ~kansas_city
    puerto_rico = fips.str.startswith(PUERTO_RICO_PREFIX)
    excluded = {
        "kansas_city_excluded": kansas_city,
        "state_and_national_rows_excluded": state_rows,
        ALASKA_BOROUGHS: reason.eq(ALASKA_BOROUGHS),
        "puerto_rico_rows_excluded": puerto_rico,
    }
    keep = pd.Series(True, index=frame.index)
    for key, mask in excluded.items():
        counts[f"{source}.{key}"] = int((keep & mask).sum())
        keep &= ~mask
    recodes = reason.where(keep & reason.ne(ALASKA_BOROUGHS), "")
    _count_reasons(recodes, counts, f"{source}.", keys=tuple(k for _, k in COUNTY_RECODES.values()))
    return frame.loc[keep].assign(county_fips=canonical[keep], own=fips[keep].eq(canonical[keep]), reason=reason[keep])


def _merge_counties(rows: pd.DataFrame, measures: _Measures, source: str, counts: dict[str, int]) -> pd.DataFrame:
    """One row per canonical county: merged rows sum their counts and recompute their rates."""
    merging = rows["county_fips"].duplicated(keep=False)
    if not measures.additive:
        # Nothing to add up: the county the row would merge into already describes the merged area.
        moved = merging & ~rows["own"]
        for reason, rows_moved in rows.loc[moved, "reason"].value_counts().items():
            counts[f"{source}.{reason}"] -= int(rows_moved)
        counts[f"{source}.merged_rows_excluded"] = int(moved.sum())
        rows = rows.loc[~moved]
        merging = rows["county_fips"].duplicated(keep=False)
    grouped = rows.sort_values("own", ascending=False, kind="stable").groupby("county_fips", sort=True)
    out = grouped[list(measures.values)].first()
    if merging.any() and measures.additive:
        additive = list(measures.additive)
        sums = grouped[additive].sum(min_count=1)
        merged = grouped[additive].count() > 1
        for column, (part, whole) in measures.percents.items():
            recomputed = 100.0 * sums[part] / sums[list(whole)].sum(axis=1, min_count=len(whole))
            out[column] = out[column].where(~merged[part], recomputed)
        for column in set(additive) & set(out.columns):
            out[column] = out[column].where(~merged[column], sums[column])
    counts[f"{source}.counties"] = len(out)
    return out.reset_index()


def _melt(wide: pd.DataFrame, measures: _Measures, source: str, counts: dict[str, int]) -> pd.DataFrame:
    """Long rows (county_fips, variable, as_of_year, value); empty cells counted in ``{source}.missing_value_cells``.

    That count is in cells of the wide file, not rows (so it does not end in ``_excluded``): a county without, say,
    2005 unemployment keeps its other values.
    """
    long = wide.melt(id_vars="county_fips", value_vars=list(measures.values), var_name="column", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype("float64")
    long["variable"] = long["column"].map(lambda column: measures.values[column][0])
    long["as_of_year"] = long["column"].map(lambda column: measures.values[column][1]).astype("int64")
    missing = long["value"].isna()
    counts[f"{source}.missing_value_cells"] = int(missing.sum())
    return long.loc[~missing, list(DEMOGRAPHIC_COLUMNS)]


def tidy_demographics(
    context: pd.DataFrame, unemployment: pd.DataFrame, education: pd.DataFrame, population: pd.DataFrame
) -> Tidy:
    """County demographics in long format: ``county_fips, variable, as_of_year, value`` (one row per triple).

    ``as_of_year`` is the last year a value describes (the 2014-18 ACS is 2018, the ACS 2012-16 of the MEDSL
    context file is 2016), so a feature for election Y may use the rows with ``as_of_year < Y``. Variables:
    ``unemployment_rate`` and ``labor_force`` 2000-2019 and ``population`` 2010-2019 (ERS), ``pct_less_hs`` and
    ``pct_bachelor_plus`` for 1990, 2000 and 2018, ``rucc`` for 2003 and 2013 (ERS education file), and
    ``white_pct, black_pct, hispanic_pct, foreignborn_pct, age65andolder_pct, median_hh_inc, lesscollege_pct``
    (2016) and ``rural_pct`` (2010) from the MEDSL context file.

    County quirks as in the returns: 46113 becomes 46102; Bedford city merges into Bedford County by adding its
    counts and recomputing the rates (ERS files), or is left out where its county already covers it (context file,
    ACS 2012-16 is after the merger; ``merged_rows_excluded``); Alaska is the ERS state row 02000 only.
    """
    counts: dict[str, int] = {}
    parts = []
    for source, frame, measures, kansas_city_coded in (
        ("election_context", context, _context_measures(), True),
        ("ers_unemployment", unemployment, _unemployment_measures(), False),
        ("ers_education", education, _education_measures(), False),
        ("ers_population", population, _population_measures(), False),
    ):
        rows = _county_rows(frame, source, kansas_city_coded, counts)
        wide = _merge_counties(rows, measures, source, counts)
        parts.append(_melt(wide, measures, source, counts))
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["county_fips", "variable", "as_of_year"], kind="stable").reset_index(drop=True)
    return Tidy(out, counts)
