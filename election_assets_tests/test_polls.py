"""The tidy poll table (``election_assets.real.polls``): the two new loaders, each rule on a hand-built case (and that a
non-duplicate stays), the district geographies, and the shipped files' counts adding up."""

import time

import numpy as np
import pandas as pd
import pytest

from election_assets.real import polls as P
from election_assets.real import schemas
from election_assets.real import sources as S

POLL_SOURCES = ("state_polls", "polls_538", "polls_2024")


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return {name: S.read_source(name) for name in POLL_SOURCES}


@pytest.fixture(scope="module")
def tidy(raw) -> S.Tidy:
    return P.tidy_polls(*(raw[name] for name in POLL_SOURCES))


# --- Hand-built raw rows, with the columns the readers give -----------------------------------------------------


def economist(*rows: dict) -> pd.DataFrame:
    base = {
        "year": 2016,
        "state": "FL",
        "pollster": "Quinnipiac",
        "start_date": "2016-10-20",
        "end_date": "2016-10-24",
        "sample_size": 600,
        "dem": 46.0,
        "rep": 44.0,
        "population": "Likely Voters",
        "partisan": "Nonpartisan",
        "affiliation": None,
        "question_iteration": 1,
    }
    frame = pd.DataFrame([base | row for row in rows], columns=list(S.POLL_COLUMNS))
    return frame.astype(
        {
            "start_date": "datetime64[ns]",
            "end_date": "datetime64[ns]",
            "sample_size": "Int64",
            "question_iteration": "Int64",
        }
    )


def fivethirtyeight(*rows: dict) -> pd.DataFrame:
    base = {
        "poll_id": 1,
        "year": 2016,
        "location": "FL",
        "pollster": "Quinnipiac University",
        "partisan": None,
        "polldate": "2016-10-22",
        "samplesize": 600.0,
        "cand1_pct": 46.0,
        "cand2_pct": 44.0,
        "comment": None,
    }
    frame = pd.DataFrame([base | {"poll_id": i + 1} | row for i, row in enumerate(rows)], columns=list(base))
    return frame.astype({"polldate": "datetime64[ns]"})


def rieke(*rows: dict) -> pd.DataFrame:
    base = {
        "poll_id": 1,
        "state": "Ohio",
        "K": 800,
        "Y": 380,
        "pollster": "YouGov",
        "end_date": "2024-08-10",
        "group": "lv",
        "candidate_sponsored": None,
        "internal": 0,
        "dem_candidate": "Harris",
    }
    frame = pd.DataFrame([base | row for row in rows], columns=list(base))
    return frame.astype({"end_date": "datetime64[ns]"})


def tidy_of(econ=None, f538=None, r2024=None) -> S.Tidy:
    return P.tidy_polls(
        econ if econ is not None else economist({}).iloc[:0],
        f538 if f538 is not None else fivethirtyeight({}).iloc[:0],
        r2024 if r2024 is not None else rieke({}).iloc[:0],
    )


def adds_up(result: S.Tidy, *frames: pd.DataFrame) -> bool:
    return sum(len(f) for f in frames) == len(result.frame) + result.excluded


# --- Loaders ----------------------------------------------------------------------------------------------------


def test_the_538_file_reads_one_row_per_poll_with_dates_parsed(raw):
    frame = raw["polls_538"]
    assert len(frame) == 3_004 and frame["poll_id"].is_unique
    first = frame.set_index("poll_id").loc[6483]  # FL, McLaughlin & Associates for Bill McCollum, Gore 43 Bush 44
    assert (first["location"], first["pollster"], first["partisan"]) == ("FL", "McLaughlin & Associates", "R")
    assert (first["polldate"], first["samplesize"], first["cand1_pct"], first["cand2_pct"]) == (
        pd.Timestamp("2000-10-17"),
        600.0,
        43.0,
        44.0,
    )
    assert frame["electiondate"].dtype == "datetime64[ns]"
    assert set(frame["year"]) == {2000, 2004, 2008, 2012, 2016, 2020}


def test_the_2024_file_reads_one_row_per_poll_and_candidate(raw):
    frame = raw["polls_2024"]
    assert len(frame) == 1_651
    assert frame["poll_id"].duplicated().sum() == 71  # asked about Biden and Harris
    assert not frame.duplicated(["poll_id", "dem_candidate"]).any()
    first = frame.iloc[0]
    assert (first["poll_id"], first["state"], first["K"], first["Y"], first["dem_candidate"]) == (
        86836,
        "National",
        952,
        465,
        "Biden",
    )
    assert first["end_date"] == pd.Timestamp("2024-05-01")
    assert pd.isna(first["candidate_sponsored"])  # "None" in the file


def test_the_economist_rows_keep_population_and_2016_partisanship(raw):
    polls = raw["state_polls"]
    assert polls["population"].notna().all()
    assert polls.loc[polls["year"] < 2016, ["partisan", "affiliation", "question_iteration"]].isna().all().all()
    assert set(polls.loc[polls["year"] == 2016, "question_iteration"]) == {1, 2}


def test_raw_schemas_pass_on_the_shipped_files(raw):
    schemas.RAW_STATE_POLLS.validate(raw["state_polls"])
    schemas.RAW_POLLS_538.validate(raw["polls_538"])
    schemas.RAW_POLLS_2024.validate(raw["polls_2024"])


# --- Rule 3: a poll in two sources counts once -------------------------------------------------------------------


def test_a_538_poll_already_in_the_economist_file_is_left_out_and_the_economist_copy_kept():
    econ = economist({})
    f538 = fivethirtyeight(
        {},  # Quinnipiac University, FL, median 10-22 within 10-20..10-24: the same poll
        {"polldate": "2016-10-28"},  # same pollster, a later poll
        {"pollster": "SurveyUSA"},  # another pollster, same days
        {"location": "GA"},  # another state
        {"polldate": "2016-10-25"},  # one day after the Economist field period: within the tolerance
    )
    result = tidy_of(econ, f538)
    assert result.counts["fivethirtyeight.duplicate_of_economist_excluded"] == 2
    kept = result.frame.set_index(["source", "source_poll_id"])
    assert set(kept.index) == {("economist", "2016-1"), *(("fivethirtyeight", i) for i in ("2", "3", "4"))}
    assert kept.loc[("economist", "2016-1"), "start_date"] == pd.Timestamp("2016-10-20")
    assert adds_up(result, econ, f538)


def test_pollster_names_are_matched_after_normalising():
    assert P.same_pollster("Quinnipiac", "Quinnipiac University")
    assert P.same_pollster("ABC/Post", "ABC News/The Washington Post")
    assert P.same_pollster("NBC/WSJ/Marist", "Marist College")
    assert P.same_pollster("PPP (D-End Citizens United)", "Public Policy Polling")
    assert P.same_pollster("Loras College", "Loras College Public Opinion Survey Center")
    assert P.same_pollster("CNN/Opinion Research", "Big Village")  # alias: CNN's polls were ORC's
    assert P.same_pollster("Research & Polling", "Research & Polling Inc.")
    assert not P.same_pollster("Rasmussen", "Public Policy Polling")
    assert not P.same_pollster("Washington Times/JZ Analytics", "The Washington Post/George Mason University")
    assert P.pollster_keys("Remington Research Group (R)/Axiom Strategies") == {"remington", "axiom"}


# --- Rule 1: one topline per poll ---------------------------------------------------------------------------------


def test_a_2024_poll_asking_biden_and_harris_counts_once_for_the_candidate_on_the_ballot():
    r2024 = rieke(
        {"poll_id": 1, "end_date": "2024-07-10", "dem_candidate": "Biden", "Y": 390},
        {"poll_id": 1, "end_date": "2024-07-10", "dem_candidate": "Harris", "Y": 370},
        {"poll_id": 2, "end_date": "2024-07-23", "dem_candidate": "Biden", "Y": 390},
        {"poll_id": 2, "end_date": "2024-07-23", "dem_candidate": "Harris", "Y": 370},
        {"poll_id": 3, "end_date": "2024-07-21", "dem_candidate": "Biden", "Y": 400},  # ended the day he withdrew
        {"poll_id": 3, "end_date": "2024-07-21", "dem_candidate": "Harris", "Y": 360},
        {"poll_id": 4, "end_date": "2024-07-15", "dem_candidate": "Biden", "Y": 410},  # only one question: stays
    )
    result = tidy_of(r2024=r2024)
    assert result.counts["rieke.other_candidate_question_excluded"] == 3
    share = result.frame.set_index("source_poll_id")["dem_share"]
    assert share.to_dict() == {"1": 390 / 800, "2": 370 / 800, "3": 400 / 800, "4": 410 / 800}
    assert adds_up(result, r2024)


def test_economist_subgroups_and_question_versions_leave_one_topline_per_poll():
    econ = economist(
        {"population": "Registered Voters", "sample_size": 900, "dem": 47.0},
        {"population": "Likely Voters", "dem": 46.0},  # kept: likely voters first
        {"population": "Likely Voters", "question_iteration": 2, "dem": 40.0, "rep": 38.0},  # with third parties
        {"population": "Likely Voters - Democrat", "sample_size": None, "dem": 90.0, "rep": 5.0},
        {"pollster": "SurveyUSA", "question_iteration": 2, "dem": 41.0},  # another poll: its only version
    )
    result = tidy_of(econ)
    assert result.counts["economist.subgroup_rows_excluded"] == 1
    assert result.counts["economist.question_versions_excluded"] == 2
    frame = result.frame.set_index("source_poll_id")
    assert set(frame.index) == {"2016-2", "2016-5"}
    assert frame.loc["2016-2", ["population", "sample_size"]].tolist() == ["lv", 600]
    assert frame.loc["2016-2", "dem_share"] == pytest.approx(46 / 90)
    assert frame.loc["2016-2", "median_date"] == pd.Timestamp("2016-10-22")


# --- Rule 4: partisan polls ---------------------------------------------------------------------------------------


def test_polls_sponsored_by_a_campaign_or_party_are_left_out_and_counted():
    econ = economist(
        {"partisan": "Sponsor", "affiliation": "Rep"},
        {"pollster": "PPP (D)", "partisan": "Pollster", "affiliation": "Dem"},  # a partisan firm's own poll: kept
        {"state": "OH", "pollster": "SurveyUSA", "partisan": None},  # its 538 copy says partisan
    )
    f538 = fivethirtyeight(
        {"location": "OH", "pollster": "SurveyUSA", "partisan": "D"},
        {"location": "PA", "partisan": "R"},
        {"location": "US", "partisan": "REP,DEM"},  # sponsored by both: kept
    )
    r2024 = rieke(
        {"poll_id": 1, "candidate_sponsored": "REP", "internal": -1},
        {"poll_id": 2, "candidate_sponsored": "DEM"},
        {"poll_id": 3, "internal": 1},
        {"poll_id": 4, "state": "Nebraska", "candidate_sponsored": "IND"},  # an independent's poll: kept
        {"poll_id": 5},
    )
    result = tidy_of(econ, f538, r2024)
    counts = result.counts
    assert counts["economist.partisan_sponsor_excluded"] == 2
    assert counts["economist.partisan_flag_from_fivethirtyeight"] == 1
    assert counts["fivethirtyeight.duplicate_of_economist_excluded"] == 1  # the OH poll, counted out once as a copy
    assert counts["fivethirtyeight.partisan_sponsor_excluded"] == 1
    assert counts["rieke.partisan_sponsor_excluded"] == 3
    assert (counts["economist.partisan_pollster_kept"], counts["fivethirtyeight.bipartisan_sponsor_kept"]) == (1, 1)
    assert counts["rieke.independent_sponsor_kept"] == 1
    assert sorted(result.frame["source_poll_id"]) == ["2016-2", "3", "4", "5"]
    assert adds_up(result, econ, f538, r2024)


# --- Rule 2 and geography -----------------------------------------------------------------------------------------


def test_districts_keep_apart_from_their_states_in_both_spellings():
    f538 = fivethirtyeight(
        *({"location": code, "year": 2020, "polldate": "2020-10-20"} for code in ("M1", "M2", "N2", "ME", "US"))
    )
    r2024 = rieke(
        *(
            {"poll_id": i, "state": state}
            for i, state in enumerate(("Maine CD-1", "Nebraska CD-3", "Nebraska", "National", "Puerto Rico"))
        )
    )
    result = tidy_of(f538=f538, r2024=r2024)
    by_source = result.frame.groupby("source")["geography"].apply(list).to_dict()
    assert by_source["fivethirtyeight"] == ["ME", "ME-1", "ME-2", "NE-2", "US"]
    assert by_source["rieke"] == ["ME-1", "NE", "NE-3", "US"]
    assert result.counts["rieke.unknown_geography_excluded"] == 1
    assert P._geography_2024(pd.Series(["District of Columbia", "Maine CD-2"])).tolist() == ["DC", "ME-2"]


def test_unusable_rows_are_left_out_by_reason():
    rows = (
        {"dem": 0.0, "rep": 0.0},
        {"sample_size": 0},
        {"start_date": "2015-06-01", "end_date": "2015-06-03"},
        {"start_date": "2016-11-20", "end_date": "2016-11-22"},
        {"state": "PR"},
        {"sample_size": None},  # unknown sample size: kept, NA
    )
    econ = economist(*({"pollster": f"Pollster {i}"} | row for i, row in enumerate(rows)))
    result = tidy_of(econ)
    expected = {
        "no_two_party_share_excluded": 1,
        "zero_sample_excluded": 1,
        "before_campaign_excluded": 1,
        "after_election_day_excluded": 1,
        "unknown_geography_excluded": 1,
    }
    assert {key: result.counts[f"economist.{key}"] for key in expected} == expected
    assert len(result.frame) == 1 and pd.isna(result.frame["sample_size"].iloc[0])


def test_538_population_comes_from_its_comment():
    f538 = fivethirtyeight(
        {"comment": "for CNN; among registered voters"},
        {"comment": "among all adults"},
        {"comment": "for unspecified Democratic sponsor; among 'voters'"},
        {"comment": None},
    )
    result = tidy_of(f538=f538)
    assert result.frame.sort_values("source_poll_id")["population"].tolist()[:3] == ["rv", "a", "v"]
    assert result.frame.sort_values("source_poll_id")["population"].isna().tolist() == [False, False, False, True]


# --- The shipped files --------------------------------------------------------------------------------------------


def test_the_shipped_polls_add_up_per_source(raw, tidy):
    assert sum(len(raw[name]) for name in POLL_SOURCES) == len(tidy.frame) + tidy.excluded
    rows_out = tidy.frame.groupby("source").size()
    for source in P.SOURCES:
        excluded = sum(
            n for key, n in tidy.counts.items() if key.startswith(f"{source}.") and key.endswith("_excluded")
        )
        assert tidy.counts[f"{source}.rows_in"] == rows_out[source] + excluded


def test_the_shipped_polls_table(tidy):
    schemas.POLLS.validate(tidy.frame)
    frame = tidy.frame
    assert tuple(frame.columns) == P.POLL_TABLE_COLUMNS
    assert frame.groupby("year")["source"].agg(lambda s: tuple(sorted(set(s)))).to_dict() == {
        2000: ("fivethirtyeight",),
        2004: ("fivethirtyeight",),
        2008: ("economist", "fivethirtyeight"),
        2012: ("economist", "fivethirtyeight"),
        2016: ("economist", "fivethirtyeight"),
        2020: ("fivethirtyeight",),
        2024: ("rieke",),
    }
    counts = tidy.counts
    assert counts["economist.subgroup_rows_excluded"] == 957
    assert counts["rieke.other_candidate_question_excluded"] == 71
    assert 800 <= counts["fivethirtyeight.duplicate_of_economist_excluded"] <= 900
    assert {"ME-1", "ME-2", "NE-1", "NE-2", "NE-3"} <= set(frame["geography"])
    assert frame["median_date"].notna().all() and frame["dem_share"].between(0, 1).all()
    # a known 2024 poll: Redfield & Wilton's national poll of 1 May, Biden 465 of 952
    known = frame[(frame["source"] == "rieke") & (frame["source_poll_id"] == "86836")].iloc[0]
    assert (known["geography"], known["sample_size"], known["population"]) == ("US", 952, "lv")
    assert known["dem_share"] == pytest.approx(465 / 952)


def test_reading_and_tidying_all_polls_takes_seconds():
    started = time.perf_counter()
    P.tidy_polls(*(S.read_source(name) for name in POLL_SOURCES))
    assert time.perf_counter() - started < 10.0


def test_no_biden_question_after_the_withdrawal_where_harris_was_asked(tidy, raw):
    both = raw["polls_2024"].loc[raw["polls_2024"]["poll_id"].duplicated(keep=False)]
    after = set(both.loc[both["end_date"] > P.BIDEN_WITHDRAWAL, "poll_id"].astype(str))
    kept = tidy.frame[tidy.frame["source"] == "rieke"].set_index("source_poll_id")
    shares = raw["polls_2024"].assign(share=lambda f: f["Y"] / f["K"])
    harris = shares[shares["dem_candidate"] == "Harris"]
    harris = pd.Series(harris["share"].to_numpy(), index=harris["poll_id"].astype(str))
    assert after & set(kept.index)
    for poll in after & set(kept.index):
        assert np.isclose(kept.loc[poll, "dem_share"], harris[poll])
