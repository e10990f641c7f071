"""The table of real mode's raw sources: what each one is and the Pandera schema that checks it as read.

``defs/real_ingest`` builds one raw asset and one blocking check per row, so a new source is one new row here (with
its reading rules in ``sources.py`` and its schema in ``schemas.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pandas as pa

from election_assets.real import schemas
from election_assets.real.sources import source_files


@dataclass(frozen=True)
class RawSource:
    name: str  # the raw asset is raw_<name>
    description: str
    schema: pa.DataFrameSchema
    # Read from the polls inbox (ELECTION_POLLS_INBOX: every CSV dropped there), not from the shipped files.
    from_inbox: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        return ("*.csv",) if self.from_inbox else source_files(self.name)


RAW_SOURCES: tuple[RawSource, ...] = (
    RawSource(
        "county_returns",
        "MEDSL county presidential returns 2000-2020, long: one row per candidate (and vote mode).",
        schemas.RAW_COUNTY_RETURNS,
    ),
    RawSource(
        "state_returns",
        "MEDSL state presidential returns 1976-2020, one row per candidate line.",
        schemas.RAW_STATE_RETURNS,
    ),
    RawSource(
        "election_context",
        "MEDSL election context 2018: ACS 2012-16 demographics and past votes by county (no AK).",
        schemas.RAW_ELECTION_CONTEXT,
    ),
    RawSource(
        "ers_unemployment",
        "USDA ERS unemployment and labor force 2000-2019 (BLS LAUS), US, states and counties.",
        schemas.RAW_ERS_UNEMPLOYMENT,
    ),
    RawSource(
        "ers_education",
        "USDA ERS educational attainment 1970-2018 and rural-urban codes, US, states and counties.",
        schemas.RAW_ERS_EDUCATION,
    ),
    RawSource(
        "ers_population",
        "USDA ERS population estimates 2010-2019 (Census PEP), US, states and counties.",
        schemas.RAW_ERS_POPULATION,
    ),
    RawSource(
        "state_polls",
        "The Economist's state and national polls 2008, 2012 and 2016 (dem/rep in percent points).",
        schemas.RAW_STATE_POLLS,
    ),
    RawSource(
        "polls_538",
        "FiveThirtyEight's presidential general-election polls 2000-2020, last ~3 weeks: one row per poll.",
        schemas.RAW_POLLS_538,
    ),
    RawSource(
        "polls_2024",
        "Mark Rieke's 2024 presidential polls (May to 4 Nov): one row per poll and Democratic candidate asked about.",
        schemas.RAW_POLLS_2024,
    ),
    RawSource(
        "polls_inbox",
        "The polls feed: every CSV in the polls inbox, in FiveThirtyEight's or Rieke's format, as written (text).",
        schemas.RAW_POLLS_INBOX,
        from_inbox=True,
    ),
)
