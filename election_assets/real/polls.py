"""One tidy table of presidential polls from every poll source, each poll counted once.

Sources (read by ``real.sources.read_source``): the Economist's files (``state_polls``: 2008, 2012 and 2016, whole
campaigns, state and national), FiveThirtyEight's (``polls_538``: 2000-2020, the last ~3 weeks, state, national and
Maine/Nebraska districts) and Mark Rieke's (``polls_2024``: 2024, May to 4 November). ``tidy_polls`` returns a
``Tidy`` whose ``counts`` say, per source (``economist.``, ``fivethirtyeight.``, ``rieke.``), how many input rows
each rule left out (keys ending ``_excluded``) or touched; input rows = output rows + ``Tidy.excluded``.

The rules, in the order they apply:

1. **Rows that are not one poll's topline are left out.** Economist 2016 rows of a party subgroup
   (``population`` like ``"Likely Voters - Democrat"``: ``subgroup_rows_excluded``); further versions of one
   Economist poll (same year, state, pollster and field dates: another population or the question with third
   parties), keeping likely voters before registered voters, voters, adults, then the head-to-head question
   (``question_iteration`` 1), then the first in the file (``question_versions_excluded``). A 2024 poll that asked
   both Biden and Harris match-ups counts once, for the candidate on the ballot when it was fielded: Biden withdrew
   on the afternoon of 21 July 2024 (``BIDEN_WITHDRAWAL``), so a poll whose field period ended on or before that day
   keeps its Biden question and a later one its Harris question (``other_candidate_question_excluded``).
2. **Unusable rows are left out:** an unknown geography (``unknown_geography_excluded``), no two-party share
   (Democrat + Republican = 0: ``no_two_party_share_excluded``), a sample of 0 (``zero_sample_excluded``), a field
   period ending before 1 January of the election year or after election day (``before_campaign_excluded``,
   ``after_election_day_excluded``).
3. **A poll present in two sources counts once** (``fivethirtyeight.duplicate_of_economist_excluded``). FiveThirtyEight
   and the Economist overlap in 2008-2016. A 538 poll is the same as an Economist poll when they have the same year
   and geography, a pollster in common after ``pollster_keys`` (lower case, sponsors after ``/`` split off,
   parenthesised notes and words like "Inc", "Research", "University" dropped, a handful of explicit aliases, and
   one name's words a prefix of the other's) and the 538 median field date within the Economist field period, give
   or take ``MATCH_TOLERANCE_DAYS``. The Economist copy is kept: it has both field dates and the population, and it
   keeps 2008-2016 one consistent series over the whole campaign; the 538 copy is left out. A tracking poll's 538
   row may fall within several overlapping Economist field periods: it is still one duplicate, counted once.
4. **Polls sponsored by a campaign or a party are left out** (``partisan_sponsor_excluded``): 538 ``partisan`` D or
   R, Rieke ``candidate_sponsored`` DEM or REP or ``internal`` not 0, Economist 2016 ``partisan == "Sponsor"`` with a
   Democratic or Republican ``affiliation``, and an Economist poll whose 538 copy is partisan
   (``partisan_flag_from_fivethirtyeight``). Such polls lean to their sponsor by a few points, and the model has no
   house-effect term to take it out, so a flag alone would leave the bias in; they are a small share (about 6% of
   538's rows, 11% of Rieke's). Kept and counted: a poll sponsored by both parties (538 ``REP,DEM``:
   ``bipartisan_sponsor_kept``), by an independent candidate (Rieke ``IND``: ``independent_sponsor_kept``) and a
   partisan firm's own poll (Economist ``partisan == "Pollster"``: ``partisan_pollster_kept``; 538 does not flag
   these either).

**The polls inbox** (``INBOX``: CSV files dropped in ``ELECTION_POLLS_INBOX``, read by ``read_polls_inbox``): each
file is in FiveThirtyEight's format or Rieke's, recognised by its columns (``INBOX_FORMATS``), and its polls go
through the rules of that format's source, counted under ``inbox.``. A poll already in the shipped file of its format
(same ``poll_id``) or in an earlier inbox file of the same format (files in name order) counts once
(``duplicate_of_shipped_excluded``, ``duplicate_of_earlier_file_excluded``); an inbox poll in FiveThirtyEight's format
that is an Economist poll is left out too (rule 3, ``duplicate_of_economist_excluded``). Its ``source`` is ``inbox``
and its ``source_poll_id`` ``"<format>:<poll_id>"``.

Columns (``POLL_TABLE_COLUMNS``): ``year``; ``geography`` (postal code, ``US`` national, ``ME-1``, ``ME-2``,
``NE-1``..``NE-3`` for the congressional districts); ``start_date`` and ``end_date`` (NaT where the source does not
give them: 538 gives only the median date, Rieke only the end date); ``median_date`` (the midpoint of start and end,
538's ``polldate``, Rieke's end date); ``pollster`` as the source writes it; ``population`` (``lv``, ``rv``, ``v``,
``a``; NA where unknown: 538 rows without a note "among registered voters / all adults / 'voters'" and rows of
unknown population); ``sample_size`` (NA where unknown; Rieke's is ``K``, the respondents choosing Harris/Biden or
Trump, the full sample is not in the file); ``dem_share`` (Democrat / (Democrat + Republican), in [0, 1]);
``source``; ``source_poll_id`` (538 and Rieke: ``poll_id``; Economist: ``"<year>-<data row of that year's file>"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from election_assets.real.sources import NATIONAL_POLL, STATE_PO, Tidy

POLL_TABLE_COLUMNS = (
    "year",
    "geography",
    "start_date",
    "end_date",
    "median_date",
    "pollster",
    "population",
    "sample_size",
    "dem_share",
    "source",
    "source_poll_id",
)
SOURCES = ("economist", "fivethirtyeight", "rieke")
INBOX = "inbox"
TABLE_SOURCES = (*SOURCES, INBOX)  # the values of the table's ``source``
POLL_YEARS = list(range(2000, 2025, 4))
ELECTION_DAYS: dict[int, pd.Timestamp] = {
    year: pd.Timestamp(day)
    for year, day in {
        2000: "2000-11-07",
        2004: "2004-11-02",
        2008: "2008-11-04",
        2012: "2012-11-06",
        2016: "2016-11-08",
        2020: "2020-11-03",
        2024: "2024-11-05",
    }.items()
}
NATIONAL = "US"
DISTRICTS = ("ME-1", "ME-2", "NE-1", "NE-2", "NE-3")
GEOGRAPHIES = (NATIONAL, *sorted(STATE_PO), *DISTRICTS)
POPULATIONS = ("lv", "rv", "v", "a")
BIDEN_WITHDRAWAL = pd.Timestamp("2024-07-21")
MATCH_TOLERANCE_DAYS = 1

STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
# FiveThirtyEight writes the districts as M1, M2 (Maine) and N1..N3 (Nebraska).
DISTRICTS_538 = {"M1": "ME-1", "M2": "ME-2", "N1": "NE-1", "N2": "NE-2", "N3": "NE-3"}
ECONOMIST_POPULATIONS = {"Likely Voters": "lv", "Registered Voters": "rv", "Adults": "a"}
# 538 notes in ``comment`` when a poll's population is not the usual one; without a note it is not stated.
POPULATION_NOTES_538 = {"among registered voters": "rv", "among all adults": "a", "among 'voters'": "v"}
PARTIES = frozenset({"D", "R", "DEM", "REP", "Dem", "Rep"})

_WORK_COLUMNS = (*POLL_TABLE_COLUMNS, "partisan")
EXCLUDED = "_excluded"


# --- Pollster names ---------------------------------------------------------------------------------------------

# Words that say what kind of organisation a pollster is, not which one.
POLLSTER_STOP_WORDS = frozenset(
    (
        *("the", "inc", "llc", "corp", "co", "and", "of", "for", "at", "u", "univ", "university", "college"),
        *("school", "law", "center", "institute", "group", "associates", "assoc", "international", "global"),
        *("research", "polling", "poll", "polls", "survey", "reports", "analytics", "strategies", "strategy"),
        *("marketing", "news", "communications"),
    )
)
# Names (after normalising) that are another name of the same pollster, or the pollster behind a sponsor's poll in
# 2008-2016: CNN's polls were ORC's (Big Village now), Fox News' Opinion Dynamics' then Beacon/Shaw's, NBC/WSJ's
# Hart/Public Opinion Strategies', the Battleground poll Lake's and Tarrance's, Civitas' the Tyson Group's,
# Hotline/Diageo's Financial Dynamics', Newsweek's and the Minneapolis Star-Tribune's Princeton Survey Research's,
# TIME's Abt SRBI's, NPR's North Star's, Democracy Corps' GQR's, InsiderAdvantage's partner Opinion Savvy; Pulse
# Opinion Research is Rasmussen's field service. Each was checked on polls with the same sample size and numbers.
POLLSTER_ALIASES: dict[str, str] = {
    "ppp": "public policy",
    "big village": "orc",
    "cnn": "orc",
    "fox": "fox",
    "fox news": "fox",
    "opinion dynamics": "fox",
    "beacon": "fox",
    "shaw": "fox",
    "wsj": "hart",
    "wall st jrnl": "hart",
    "battleground": "tarrance",
    "civitas": "tyson",
    "hotline": "financial dynamics",
    "fd": "financial dynamics",
    "diageo": "financial dynamics",
    "insider advantage": "insideradvantage",
    "opinion savvy": "insideradvantage",
    "arg": "american",
    "mprc": "maine people s resource",
    "umass lowell": "massachusetts lowell public opinion",
    "unh": "new hampshire",
    "wneu": "western new england",
    "ziapoll": "zia",
    "jzanalytics": "zogby",
    "jz": "zogby",
    "ap gfk": "gfk",
    "chicago tribune": "market shares",
    "newsweek": "princeton",
    "minn star tribune": "princeton",
    "united technologies": "princeton",
    "anchorage press": "alaska",
    "pulse": "rasmussen",
    "time": "abt",
    "project new america": "grove insight",
    "national public radio": "north star opinion",
    "democracy corps": "gqr",
    "insights west": "leger",
}
_CORPORATE = frozenset({"the", "and", "inc", "llc", "corp", "co"})


def pollster_keys(name: str) -> frozenset[str]:
    """The normalised names of the organisations in a pollster's name, one per ``/``- or ``|``-separated part.

    ``"Remington Research Group (R)/Axiom Strategies"`` -> ``{"remington", "axiom"}``; a part made only of stop
    words keeps them (``"Research & Polling Inc."`` -> ``"research polling"``); aliases apply to whole parts.
    """
    text = re.sub(r"\[.*?\]|\(.*?\)", " ", name.lower())
    keys = set()
    for part in re.split(r"[/|]", text):
        words = re.sub(r"[^a-z0-9 ]", " ", part.replace("&", " and ")).split()
        kept = [w for w in words if w not in POLLSTER_STOP_WORDS] or [w for w in words if w not in _CORPORATE]
        if kept:
            key = " ".join(kept)
            keys.add(POLLSTER_ALIASES.get(key, key))
    return frozenset(keys)


def _same_key(a: str, b: str) -> bool:
    """Two normalised names name one pollster: equal, or one's words begin the other's ("loras" / "loras opinion")."""
    short, long = sorted((a.split(), b.split()), key=len)
    return long[: len(short)] == short


def same_pollster(a: str, b: str) -> bool:
    """Whether two pollster names, as two sources write them, share an organisation (see ``pollster_keys``)."""
    return any(_same_key(x, y) for x in pollster_keys(a) for y in pollster_keys(b))


# --- Per source -------------------------------------------------------------------------------------------------


def _exclude(frame: pd.DataFrame, mask: pd.Series, key: str, counts: dict[str, int]) -> pd.DataFrame:
    """Leave out the rows of ``mask`` and count them under ``key`` (which ends in ``_excluded``)."""
    assert key.endswith(EXCLUDED)
    mask = mask.fillna(False).astype(bool)
    counts[key] = counts.get(key, 0) + int(mask.sum())
    return frame.loc[~mask]


def _common_exclusions(frame: pd.DataFrame, source: str, counts: dict[str, int]) -> pd.DataFrame:
    """Rule 2 on a source's rows in the table's columns (and ``dem`` / ``rep``, dropped here)."""
    frame = _exclude(frame, ~frame["geography"].isin(GEOGRAPHIES), f"{source}.unknown_geography{EXCLUDED}", counts)
    two_party = frame["dem"] + frame["rep"]
    frame = _exclude(frame, ~(two_party > 0), f"{source}.no_two_party_share{EXCLUDED}", counts)
    frame = _exclude(frame, frame["sample_size"].eq(0), f"{source}.zero_sample{EXCLUDED}", counts)
    last = frame["end_date"].fillna(frame["median_date"])
    early = last < pd.to_datetime(frame["year"].astype(str) + "-01-01")
    late = last > frame["year"].map(ELECTION_DAYS)
    frame = _exclude(frame, early, f"{source}.before_campaign{EXCLUDED}", counts)
    frame = _exclude(frame, late, f"{source}.after_election_day{EXCLUDED}", counts)
    frame = frame.assign(
        dem_share=frame["dem"] / (frame["dem"] + frame["rep"]), source=source, pollster=frame["pollster"].str.strip()
    )
    return frame[list(_WORK_COLUMNS)]


def economist_polls(raw: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    """The Economist's rows (``read_source("state_polls")``) as polls: rules 1 and 2, ``partisan`` per rule 4."""
    source = "economist"
    row = raw.groupby("year").cumcount() + 1
    frame = raw.assign(source_poll_id=raw["year"].astype(str) + "-" + row.astype(str))
    subgroup = frame["population"].str.contains(" - ", regex=False)
    frame = _exclude(frame, subgroup, f"{source}.subgroup_rows{EXCLUDED}", counts)

    population = frame["population"].map(ECONOMIST_POPULATIONS)
    rank = population.map({p: i for i, p in enumerate(POPULATIONS)}).fillna(len(POPULATIONS))
    iteration = frame["question_iteration"].astype("Float64").fillna(1.0)
    order = frame.assign(_rank=rank, _iteration=iteration, population=population).sort_values(
        ["_rank", "_iteration"], kind="stable"
    )
    version = order.duplicated(["year", "state", "pollster", "start_date", "end_date"], keep="first")
    frame = _exclude(order, version, f"{source}.question_versions{EXCLUDED}", counts).sort_index()

    sponsor = frame["partisan"].eq("Sponsor") & frame["affiliation"].isin(PARTIES)
    counts[f"{source}.partisan_pollster_kept"] = int(
        (frame["partisan"].eq("Pollster") & frame["affiliation"].isin(PARTIES)).sum()
    )
    frame = frame.assign(
        geography=frame["state"].replace({NATIONAL_POLL: NATIONAL}),
        median_date=frame["start_date"] + (frame["end_date"] - frame["start_date"]) / 2,
        partisan=sponsor,
    )
    frame["median_date"] = frame["median_date"].dt.floor("D")
    return _common_exclusions(frame, source, counts)


def _population_538(comment: pd.Series) -> pd.Series:
    population = pd.Series(pd.NA, index=comment.index, dtype=object)
    for note, value in POPULATION_NOTES_538.items():
        population = population.mask(comment.str.contains(note, regex=False, na=False), value)
    return population


def fivethirtyeight_polls(raw: pd.DataFrame, counts: dict[str, int], source: str = "fivethirtyeight") -> pd.DataFrame:
    """FiveThirtyEight's rows (``read_source("polls_538")``) as polls: rule 2, ``partisan`` per rule 4.

    Candidate 1 is the Democrat and candidate 2 the Republican (the raw schema holds the file to it). ``source``
    names the rows' source and their counts (``inbox`` for the files of the polls inbox).
    """
    counts[f"{source}.bipartisan_sponsor_kept"] = int(raw["partisan"].eq("REP,DEM").sum())
    location = raw["location"]
    frame = pd.DataFrame(
        {
            "year": raw["year"].astype("int64"),
            "geography": location.map(DISTRICTS_538).fillna(location.replace({"US": NATIONAL})),
            "start_date": pd.NaT,
            "end_date": pd.NaT,
            "median_date": raw["polldate"],
            "pollster": raw["pollster"],
            "population": _population_538(raw["comment"]),
            "sample_size": raw["samplesize"].round().astype("Int64"),
            "dem": raw["cand1_pct"].astype("float64"),
            "rep": raw["cand2_pct"].astype("float64"),
            "source_poll_id": raw["poll_id"].astype(str),
            "partisan": raw["partisan"].isin(PARTIES),
        },
        index=raw.index,
    )
    frame[["start_date", "end_date"]] = frame[["start_date", "end_date"]].astype("datetime64[ns]")
    return _common_exclusions(frame, source, counts)


def _geography_2024(state: pd.Series) -> pd.Series:
    """``"National"`` -> ``US``, ``"Maine CD-2"`` -> ``ME-2``, ``"Ohio"`` -> ``OH``; NaN where unknown."""
    parts = state.str.extract(r"^(?P<name>.*?)(?: CD-(?P<district>\d))?$")
    postal = parts["name"].map(STATE_NAMES)
    geography = postal.where(parts["district"].isna(), postal + "-" + parts["district"])
    return geography.mask(state.eq("National"), NATIONAL)


def rieke_polls(raw: pd.DataFrame, counts: dict[str, int], source: str = "rieke") -> pd.DataFrame:
    """Mark Rieke's 2024 rows (``read_source("polls_2024")``) as polls: rules 1 and 2, ``partisan`` per rule 4
    (``source`` as in ``fivethirtyeight_polls``)."""
    both = raw["poll_id"].duplicated(keep=False)
    on_ballot = np.where(raw["end_date"] <= BIDEN_WITHDRAWAL, "Biden", "Harris")
    frame = _exclude(
        raw, both & raw["dem_candidate"].ne(on_ballot), f"{source}.other_candidate_question{EXCLUDED}", counts
    )
    counts[f"{source}.independent_sponsor_kept"] = int(frame["candidate_sponsored"].eq("IND").sum())
    frame = pd.DataFrame(
        {
            "year": np.int64(2024),
            "geography": _geography_2024(frame["state"]),
            "start_date": pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]"),
            "end_date": frame["end_date"],
            "median_date": frame["end_date"],
            "pollster": frame["pollster"],
            "population": frame["group"].where(frame["group"].isin(POPULATIONS)),
            "sample_size": frame["K"].astype("Int64"),
            "dem": frame["Y"].astype("float64"),
            "rep": (frame["K"] - frame["Y"]).astype("float64"),
            "source_poll_id": frame["poll_id"].astype(str),
            "partisan": frame["candidate_sponsored"].isin(PARTIES) | frame["internal"].ne(0),
        },
        index=frame.index,
    )
    return _common_exclusions(frame, source, counts)


# --- The polls inbox ------------------------------------------------------------------------------------------

# The columns that say which format an inbox file is in, by the source whose rules its polls go through (the
# blocking check then holds the file to every column of the format's schema, ``schemas.INBOX_SCHEMAS``).
INBOX_FORMATS: dict[str, tuple[str, ...]] = {
    "fivethirtyeight": ("poll_id", "location", "polldate", "cand1_pct", "cand2_pct"),
    "rieke": ("poll_id", "state", "end_date", "K", "Y", "dem_candidate"),
}
# The columns ``read_polls_inbox`` adds in front of the files' own: the file's name, its format, the row's number
# within the file (from 0, the first row after the header, as pandas and the other checks number rows).
INBOX_COLUMNS = ("source_file", "source_format", "source_row")
# Cells that mean "missing", as pandas reads a CSV by default (Rieke's file writes ``None`` for no sponsor).
MISSING_TEXT = ("", "NA", "N/A", "n/a", "NaN", "nan", "None", "NULL", "null", "#N/A", "<NA>")


class InboxFormatError(ValueError):
    """A file in the polls inbox that is in neither supported format."""


def inbox_files(directory: str | Path) -> list[Path]:
    """The CSV files of the inbox in name order (hidden files left out); none when the folder does not exist."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*.csv") if path.is_file() and not path.name.startswith("."))


def inbox_format(columns: pd.Index | list[str]) -> str | None:
    """The format (a key of ``INBOX_FORMATS``) whose columns a file's header has, or None."""
    present = set(columns)
    return next((name for name, needed in INBOX_FORMATS.items() if present.issuperset(needed)), None)


def _unrecognised(path: Path, columns: list[str]) -> InboxFormatError:
    expected = "; ".join(f"{name}: {', '.join(needed)}" for name, needed in INBOX_FORMATS.items())
    return InboxFormatError(
        f"polls inbox file {path.name}: its columns ({', '.join(columns) or 'none'}) are in no supported format; "
        f"a file needs the columns of one of them ({expected})"
    )


def read_polls_inbox(directory: str | Path) -> pd.DataFrame:
    """Every CSV file of the inbox, in name order, as written: one row per data row, every cell as text (``""``
    where empty), after ``INBOX_COLUMNS``; a column one file has and another not is NaN in the other's rows.

    Raises ``InboxFormatError`` naming a file whose columns are in no format of ``INBOX_FORMATS``. An empty or
    missing inbox gives a table of ``INBOX_COLUMNS`` and no rows.
    """
    frames = []
    for path in inbox_files(directory):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            raise _unrecognised(path, []) from None
        frame.columns = frame.columns.str.strip()
        source_format = inbox_format(frame.columns)
        if source_format is None:
            raise _unrecognised(path, list(frame.columns))
        meta = {"source_file": path.name, "source_format": source_format, "source_row": np.arange(len(frame))}
        frames.append(pd.concat([pd.DataFrame(meta, index=frame.index), frame], axis=1))
    if not frames:
        return pd.DataFrame({"source_file": [], "source_format": [], "source_row": []}).astype(
            {"source_file": object, "source_format": object, "source_row": "int64"}
        )
    return pd.concat(frames, ignore_index=True).astype({"source_row": "int64"})


def inbox_file_frames(raw: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Each file of ``read_polls_inbox``'s table: its name, its format and its rows with its own columns, indexed
    by ``source_row``, the cells of ``MISSING_TEXT`` NaN, the rest still text."""
    for name, rows in raw.groupby("source_file", sort=False):
        # A column the file does not have is NaN in its rows; an empty cell of its own is "".
        frame = rows.drop(columns=list(INBOX_COLUMNS)).dropna(axis=1, how="all")
        frame = frame.mask(frame.isin(MISSING_TEXT)).set_axis(pd.Index(rows["source_row"], name=None))
        yield str(name), str(rows["source_format"].iloc[0]), frame


_INBOX_RULES = {"fivethirtyeight": fivethirtyeight_polls, "rieke": rieke_polls}


def inbox_polls(
    inbox: Mapping[str, pd.DataFrame], shipped: Mapping[str, pd.DataFrame], counts: dict[str, int]
) -> pd.DataFrame:
    """The inbox's rows as polls, each format by its source's rules; a poll of a shipped file (``shipped``: the
    raw file of each format) or of an earlier inbox file counts once. ``inbox``: per format, the typed rows of its
    files (``schemas.typed_inbox``, with ``source_file``), files in name order."""
    parts = []
    for source_format, frame in inbox.items():
        shipped_copy = frame["poll_id"].isin(shipped[source_format]["poll_id"])
        frame = _exclude(frame, shipped_copy, f"{INBOX}.duplicate_of_shipped{EXCLUDED}", counts)
        first_file = frame.groupby("poll_id")["source_file"].transform("first")
        frame = _exclude(
            frame, frame["source_file"].ne(first_file), f"{INBOX}.duplicate_of_earlier_file{EXCLUDED}", counts
        )
        if frame.empty:
            continue
        polls = _INBOX_RULES[source_format](frame, counts, INBOX)
        parts.append(polls.assign(source_poll_id=source_format + ":" + polls["source_poll_id"], _format=source_format))
    if not parts:
        return pd.DataFrame(columns=[*_WORK_COLUMNS, "_format"])
    return pd.concat(parts, ignore_index=True)


# --- All sources ----------------------------------------------------------------------------------------------


def match_duplicates(economist: pd.DataFrame, fivethirtyeight: pd.DataFrame) -> pd.DataFrame:
    """The pairs (``economist``, ``fivethirtyeight`` index labels) that are one poll, per rule 3."""
    tolerance = pd.Timedelta(days=MATCH_TOLERANCE_DAYS)
    left = economist[["year", "geography", "start_date", "end_date", "pollster"]].rename_axis("economist")
    right = fivethirtyeight[["year", "geography", "median_date", "pollster"]].rename_axis("fivethirtyeight")
    pairs = left.reset_index().merge(right.reset_index(), on=["year", "geography"], suffixes=("", "_538"))
    in_period = pairs["median_date"].between(pairs["start_date"] - tolerance, pairs["end_date"] + tolerance)
    pairs = pairs.loc[in_period]
    names = pairs[["pollster", "pollster_538"]].drop_duplicates()
    same = {(a, b) for a, b in names.itertuples(index=False) if same_pollster(a, b)}
    is_same = [(a, b) in same for a, b in zip(pairs["pollster"], pairs["pollster_538"], strict=True)]
    return pairs.loc[is_same, ["economist", "fivethirtyeight"]].reset_index(drop=True)


def tidy_polls(
    economist: pd.DataFrame,
    fivethirtyeight: pd.DataFrame,
    rieke: pd.DataFrame,
    inbox: Mapping[str, pd.DataFrame] | None = None,
) -> Tidy:
    """One row per poll from the three sources (``read_source`` of ``state_polls``, ``polls_538``,
    ``polls_2024``) and the polls inbox (``inbox``, as ``inbox_polls`` takes it; None: no inbox), by the rules of
    this module's docstring; columns ``POLL_TABLE_COLUMNS``.

    ``counts`` also has ``<source>.rows_in`` (not a ``_excluded`` key): the input rows of each source.
    """
    counts: dict[str, int] = {}
    for source, raw in zip(SOURCES, (economist, fivethirtyeight, rieke), strict=True):
        counts[f"{source}.rows_in"] = len(raw)
    if inbox is not None:
        counts[f"{INBOX}.rows_in"] = sum(len(frame) for frame in inbox.values())
    econ = economist_polls(economist, counts)
    f538 = fivethirtyeight_polls(fivethirtyeight, counts)
    r2024 = rieke_polls(rieke, counts)

    pairs = match_duplicates(econ, f538)
    partisan_copy = f538.loc[pairs["fivethirtyeight"], "partisan"].to_numpy()
    flagged = pd.Index(pairs.loc[partisan_copy, "economist"].unique())
    counts["economist.partisan_flag_from_fivethirtyeight"] = int((~econ.loc[flagged, "partisan"]).sum())
    econ.loc[flagged, "partisan"] = True
    duplicate = f538.index.isin(pairs["fivethirtyeight"])
    f538 = _exclude(
        f538, pd.Series(duplicate, index=f538.index), f"fivethirtyeight.duplicate_of_economist{EXCLUDED}", counts
    )

    frames = dict(zip(SOURCES, (econ, f538, r2024), strict=True))
    if inbox is not None:
        mine = inbox_polls(inbox, {"fivethirtyeight": fivethirtyeight, "rieke": rieke}, counts)
        in_538_format = mine.loc[mine["_format"].eq("fivethirtyeight")]
        inbox_pairs = (
            match_duplicates(econ, in_538_format) if len(in_538_format) else pd.DataFrame({"fivethirtyeight": []})
        )
        duplicate = pd.Series(mine.index.isin(inbox_pairs["fivethirtyeight"]), index=mine.index)
        frames[INBOX] = _exclude(mine, duplicate, f"{INBOX}.duplicate_of_economist{EXCLUDED}", counts)

    parts = []
    for source, frame in frames.items():
        kept = _exclude(frame, frame["partisan"], f"{source}.partisan_sponsor{EXCLUDED}", counts)
        if source != INBOX or len(kept):  # an empty inbox adds no rows (and leaves the columns' types alone)
            parts.append(kept)
    out = pd.concat(parts, ignore_index=True)[list(POLL_TABLE_COLUMNS)]
    out = out.astype({"year": "int64", "sample_size": "Int64", "dem_share": "float64"})
    out = out.sort_values(["year", "geography", "median_date", "source", "pollster"], kind="stable")
    return Tidy(out.reset_index(drop=True), dict(sorted(counts.items())))
