"""The real-mode readers and tidy functions, on the shipped files and on small slices of them: every loader, every
join quirk (the fix and its count), the 2020 national totals, and that no input row is lost uncounted."""

import shutil

import numpy as np
import pandas as pd
import pytest

from election_assets.real import sources as S
from election_assets.real.sources import SHIPPED_REAL_DATA_DIR
from election_assets.settings import PipelineSettings

RI_FEDERAL_PRECINCT_2020 = {"dem": 1_276, "rep": 85}  # no FIPS: counted out of the county table
NATIONAL_2020 = {"dem": 81_264_648, "rep": 74_218_999}


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    return {name: S.read_source(name, SHIPPED_REAL_DATA_DIR) for name in S.SOURCE_NAMES}


@pytest.fixture(scope="module")
def counties(raw) -> pd.DataFrame:
    return raw["county_returns"]


def where(frame: pd.DataFrame, **equal) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        mask &= frame[column].isin(value) if isinstance(value, list | tuple) else frame[column].eq(value)
    return frame.loc[mask]


def one(frame: pd.DataFrame, **equal) -> pd.Series:
    (row,) = [row for _, row in where(frame, **equal).iterrows()]
    return row


# --- read_source ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("county_returns", 72_617),
        ("state_returns", 4_287),
        ("election_context", 3_114),
        ("ers_unemployment", 3_275),
        ("ers_education", 3_283),
        ("ers_population", 3_273),
        ("state_polls", 1_323 + 1_175 + 3_168),
        ("polls_538", 3_004),
        ("polls_2024", 1_651),
    ],
)
def test_every_source_reads_with_its_published_row_count_and_clean_headers(raw, name, rows):
    frame = raw[name]
    assert len(frame) == rows
    assert all(column == column.strip() for column in frame.columns)


def test_fips_codes_stay_strings_as_written(raw):
    assert one(raw["county_returns"], year=2000, county_name="AUTAUGA", party="DEMOCRAT")["county_fips"] == "1001"
    assert one(raw["county_returns"], year=2020, county_name="AUTAUGA", party="DEMOCRAT")["county_fips"] == "01001"
    assert raw["election_context"]["fips"].iloc[0] == "1001"
    assert raw["ers_population"]["FIPStxt"].iloc[0] == "00000"
    assert raw["state_returns"]["state_fips"].iloc[0] == "1"


def test_ers_files_are_decoded_as_latin1_with_thousands_separators(raw):
    assert "Doña Ana County" in set(raw["ers_population"]["Area_Name"])
    assert "Añasco Municipio" in set(raw["ers_education"]["Area name"])
    us = one(raw["ers_unemployment"], FIPStxt="0")
    assert (
        us["Civilian_labor_force_2000"] == 142_601_667
    )  # "142,601,667" in the file, header " Civilian_labor_force_2000 "
    assert raw["ers_population"]["POP_ESTIMATE_2019"].dtype == np.int64


def test_polls_are_one_table_with_dem_rep_and_parsed_dates(raw):
    polls = raw["state_polls"]
    assert tuple(polls.columns) == S.POLL_COLUMNS
    assert polls["year"].dtype == np.int64 and set(polls["year"]) == {2008, 2012, 2016}
    assert polls["start_date"].dtype == "datetime64[ns]" and polls["end_date"].dtype == "datetime64[ns]"
    first_2008 = polls[polls["year"] == 2008].iloc[0]  # AK,SurveyUSA,600,3/3/08,3/6/08,obama 43,mccain 48
    assert (first_2008["state"], first_2008["end_date"], first_2008["dem"], first_2008["rep"]) == (
        "AK",
        pd.Timestamp("2008-03-06"),
        43.0,
        48.0,
    )
    first_2016 = polls[polls["year"] == 2016].iloc[0]  # "--", 2016-11-07, trump 41, clinton 45
    assert (first_2016["end_date"], first_2016["dem"], first_2016["rep"]) == (pd.Timestamp("2016-11-07"), 45.0, 41.0)
    assert polls["sample_size"].dtype == "Int64"


def test_unknown_source_names_the_choices():
    with pytest.raises(ValueError, match="county_returns"):
        S.read_source("county_retruns")


def test_the_folder_can_be_overridden_by_environment(tmp_path):
    shutil.copy(SHIPPED_REAL_DATA_DIR / S.SOURCE_FILES["state_returns"].filename, tmp_path)
    folder = PipelineSettings.from_env({"ELECTION_REAL_DATA_DIR": str(tmp_path)}).real_data_dir
    assert folder == tmp_path
    assert PipelineSettings.from_env({}).real_data_dir == SHIPPED_REAL_DATA_DIR
    assert len(S.read_source("state_returns", folder)) == 4_287
    with pytest.raises(FileNotFoundError):
        S.read_source("county_returns", folder)


def test_normalize_fips_pads_every_spelling_and_keeps_gaps():
    codes = pd.Series([1001, "2013", "01001", "1001.0", np.nan, " 46113 "], dtype=object)
    assert S.normalize_fips(codes).tolist()[:4] == ["01001", "02013", "01001", "01001"]
    assert pd.isna(S.normalize_fips(codes).iloc[4])
    assert S.normalize_fips(codes).iloc[5] == "46113"
    assert S.normalize_fips(pd.Series([1, 56]), width=2).tolist() == ["01", "56"]


# --- county returns: one quirk per test -----------------------------------------------------------------------


def test_county_fips_are_zero_padded(counties):
    tidy = S.tidy_county_returns(where(counties, year=2000, state_po="AL"))
    assert tidy.frame["county_fips"].str.fullmatch(r"01\d{3}").all()
    autauga = one(tidy.frame, county_fips="01001")
    assert (autauga["dem_votes"], autauga["rep_votes"], autauga["total_votes"]) == (4_942, 11_993, 17_208)


def test_vote_modes_are_summed_where_a_county_has_no_total(counties):
    alamance = where(counties, year=2020, county_fips="37001")
    assert "TOTAL" not in set(alamance["mode"])
    tidy = S.tidy_county_returns(alamance)
    (row,) = tidy.frame.itertuples()
    assert row.dem_votes == alamance.loc[alamance["party"] == "DEMOCRAT", "candidatevotes"].sum()
    assert row.total_votes == alamance["totalvotes"].iloc[0]
    assert tidy.counts["vote_mode_rows_summed"] == len(alamance)


def test_total_rows_win_over_vote_mode_rows(counties):
    beaver = where(counties, year=2020, county_fips="49001")  # Utah: modes (all 0) and TOTAL
    tidy = S.tidy_county_returns(beaver)
    (row,) = tidy.frame.itertuples()
    assert (row.dem_votes, row.rep_votes, row.total_votes) == (357, 2_695, 3_100)
    assert tidy.counts["vote_mode_rows_superseded_excluded"] == (beaver["mode"] != "TOTAL").sum() == 15
    assert tidy.counts["vote_mode_rows_summed"] == 0


def test_dc_2020_gets_its_fips(counties):
    tidy = S.tidy_county_returns(where(counties, year=2020, state_po="DC"))
    row = one(tidy.frame, county_fips="11001")
    assert (row["dem_votes"], row["rep_votes"]) == (317_323, 18_586)
    assert tidy.counts["dc_fips_filled"] == 5 and tidy.counts["no_fips_rows_excluded"] == 0


def test_units_without_fips_are_counted_out(counties):
    statewide = counties[counties["county_fips"].isna() & counties["state_po"].ne("DC")]
    assert set(statewide["county_name"]) == {"STATEWIDE WRITEIN", "MAINE UOCAVA", "FEDERAL PRECINCT"}
    tidy = S.tidy_county_returns(statewide)
    assert tidy.frame.empty and tidy.counts["no_fips_rows_excluded"] == len(statewide) == 52


def test_kansas_city_merges_into_jackson_county(counties):
    rows = where(counties, year=2016, county_fips=["29095", "36000"])
    tidy = S.tidy_county_returns(rows)
    (row,) = tidy.frame.itertuples()
    assert (row.county_fips, row.county_name, row.state_po) == ("29095", "JACKSON", "MO")
    assert row.dem_votes == rows.loc[rows["party"] == "DEMOCRAT", "candidatevotes"].sum()
    assert row.total_votes == rows.groupby("county_fips")["totalvotes"].first().sum()
    assert tidy.counts["kansas_city_merged"] == (rows["county_fips"] == "36000").sum() == 3


def test_bedford_city_merges_into_bedford_county(counties):
    rows = where(counties, year=2000, county_fips=["51019", "51515"])
    tidy = S.tidy_county_returns(rows)
    (row,) = tidy.frame.itertuples()
    assert row.county_fips == "51019"
    assert row.rep_votes == rows.loc[rows["party"] == "REPUBLICAN", "candidatevotes"].sum()
    assert tidy.counts["bedford_city_merged"] == 4


def test_oglala_lakota_is_recoded(counties):
    tidy = S.tidy_county_returns(where(counties, year=2020, county_fips="46113"))
    assert tidy.frame["county_fips"].tolist() == ["46102"]
    assert tidy.counts["oglala_lakota_recoded"] == 3


def test_alaska_districts_collapse_into_one_statewide_unit(counties):
    alaska = where(counties, year=2016, state="ALASKA")  # district 99 has no state_po
    tidy = S.tidy_county_returns(alaska)
    (row,) = tidy.frame.itertuples()
    assert (row.county_fips, row.county_name, row.state_po) == (S.ALASKA_FIPS, "ALASKA", "AK")
    assert row.dem_votes == alaska.loc[alaska["party"] == "DEMOCRAT", "candidatevotes"].sum() == 116_454
    assert row.total_votes == alaska.groupby("county_fips")["totalvotes"].first().sum()
    assert tidy.counts["alaska_districts_collapsed"] == len(alaska) == 123
    assert tidy.counts["state_po_filled"] == 3


def test_missing_candidate_votes_count_as_zero(counties):
    baker = where(counties, year=2000, county_fips="13007")  # Nader's votes are NA
    tidy = S.tidy_county_returns(baker)
    (row,) = tidy.frame.itertuples()
    assert row.total_votes == 1_519  # the reported total still holds
    assert tidy.counts["missing_candidatevotes"] == 1


def test_total_votes_never_below_the_candidates(counties):
    san_joaquin = S.tidy_county_returns(where(counties, year=2020, county_fips="06077"))  # totalvotes NA
    assert one(san_joaquin.frame, county_fips="06077")["total_votes"] == 161_137 + 1_064 + 2_929 + 121_098
    assert san_joaquin.counts["totalvotes_missing_rows"] == 5
    keya_paha = S.tidy_county_returns(where(counties, year=2016, county_fips="31103"))  # reports 479 for 519 votes
    assert one(keya_paha.frame, county_fips="31103")["total_votes"] == 519
    assert keya_paha.counts["totalvotes_below_candidate_sum_rows"] == 3


@pytest.fixture(scope="module")
def county_returns(counties) -> S.Tidy:
    return S.tidy_county_returns(counties)


def test_county_returns_match_the_2020_national_totals(counties, county_returns):
    totals = county_returns.frame.loc[county_returns.frame["year"] == 2020, ["dem_votes", "rep_votes"]].sum()
    # What the county table holds, and with the one no-FIPS unit of 2020 back, the published national totals.
    assert totals["dem_votes"] == NATIONAL_2020["dem"] - RI_FEDERAL_PRECINCT_2020["dem"]
    assert totals["rep_votes"] == NATIONAL_2020["rep"] - RI_FEDERAL_PRECINCT_2020["rep"]
    ri = where(counties, year=2020, county_name="FEDERAL PRECINCT")
    assert ri.loc[ri["party"] == "DEMOCRAT", "candidatevotes"].sum() == RI_FEDERAL_PRECINCT_2020["dem"]


def test_county_returns_lose_no_row_and_no_vote(counties, county_returns):
    counts = county_returns.counts
    assert len(counties) == counts["rows_aggregated"] + county_returns.excluded
    # Every vote of the file is in the table but those of the no-FIPS units and of mode rows beside a TOTAL.
    with_fips = counties.assign(county_fips=counties["county_fips"].mask(counties["state_po"].eq("DC"), "11001"))
    with_fips = with_fips[with_fips["county_fips"].notna()]
    has_total = with_fips["mode"].eq("TOTAL").groupby([with_fips["year"], with_fips["county_fips"]]).transform("any")
    kept = with_fips[~has_total | with_fips["mode"].eq("TOTAL")]
    assert len(with_fips) - len(kept) == counts["vote_mode_rows_superseded_excluded"]
    for party, column in (("DEMOCRAT", "dem_votes"), ("REPUBLICAN", "rep_votes")):
        assert kept.loc[kept["party"] == party, "candidatevotes"].sum() == county_returns.frame[column].sum()


def test_county_returns_have_one_row_per_county_and_year(county_returns):
    frame = county_returns.frame
    assert tuple(frame.columns) == S.COUNTY_RETURN_COLUMNS
    assert not frame.duplicated(["year", "county_fips"]).any()
    assert frame["county_fips"].str.fullmatch(r"\d{5}").all()
    per_year = frame.groupby("year").size().to_dict()
    assert per_year == {2000: 3_112, 2004: 3_113, 2008: 3_113, 2012: 3_113, 2016: 3_113, 2020: 3_113}
    assert "08014" not in set(frame.loc[frame["year"] == 2000, "county_fips"])  # Broomfield, CO: created 2001
    assert (frame[["dem_votes", "rep_votes", "total_votes"]].dtypes == np.int64).all()


# --- state returns --------------------------------------------------------------------------------------------


def test_state_returns_use_simplified_parties(raw):
    minnesota = where(raw["state_returns"], year=2012, state_po="MN")
    dfl = one(minnesota, party_detailed="DEMOCRATIC-FARMER-LABOR")
    row = one(S.tidy_state_returns(minnesota).frame, state_po="MN")
    assert (row["state_fips"], row["dem_votes"]) == ("27", dfl["candidatevotes"])


def test_state_returns_sum_a_partys_lines(raw):
    maryland = where(raw["state_returns"], year=2016, state_po="MD")
    tidy = S.tidy_state_returns(maryland)
    row = one(tidy.frame, state_po="MD")
    assert (row["dem_votes"], row["rep_votes"]) == (1_677_928 + 78, 943_169 + 259)
    assert tidy.counts["party_lines_summed"] == 2


def test_state_returns_cover_51_states_every_election_and_lose_no_row(raw):
    tidy = S.tidy_state_returns(raw["state_returns"])
    frame = tidy.frame
    assert tuple(frame.columns) == S.STATE_RETURN_COLUMNS
    assert frame.groupby("year")["state_po"].nunique().eq(51).all() and frame["year"].nunique() == 12
    assert frame["state_fips"].str.fullmatch(r"\d{2}").all()
    assert len(raw["state_returns"]) == tidy.counts["rows_aggregated"] + tidy.excluded
    assert tidy.counts["party_lines_summed"] == 4
    national = frame[frame["year"] == 2020][["dem_votes", "rep_votes"]].sum()
    assert (national["dem_votes"], national["rep_votes"]) == (81_268_908, 74_216_146)  # MEDSL's state file


# --- demographics ---------------------------------------------------------------------------------------------


def demographics(raw, **slices) -> S.Tidy:
    """tidy_demographics on slices of the four files (a file not sliced is passed empty)."""
    names = ("election_context", "ers_unemployment", "ers_education", "ers_population")
    fips = {name: S.SOURCE_FILES[name].fips_column for name in names}
    frames = [raw[name][raw[name][fips[name]].isin(slices.get(name, []))] for name in names]
    return S.tidy_demographics(*frames)


def values(tidy: S.Tidy, county_fips: str, variable: str) -> dict[int, float]:
    rows = where(tidy.frame, county_fips=county_fips, variable=variable)
    return dict(zip(rows["as_of_year"], rows["value"], strict=True))


def test_demographics_are_long_with_as_of_years(raw):
    tidy = demographics(
        raw,
        election_context=["1001"],
        ers_unemployment=["1001"],
        ers_education=["1001"],  # as in the file: 4 digits here, 5 in the population file
        ers_population=["01001"],
    )
    assert tuple(tidy.frame.columns) == S.DEMOGRAPHIC_COLUMNS
    frame = tidy.frame
    assert frame["county_fips"].eq("01001").all()
    assert set(frame["variable"]) == set(S.DEMOGRAPHIC_VARIABLES)
    assert sorted(values(tidy, "01001", "unemployment_rate")) == list(range(2000, 2020))
    assert values(tidy, "01001", "unemployment_rate")[2000] == 4.0
    assert values(tidy, "01001", "labor_force")[2000] == 21_720
    assert sorted(values(tidy, "01001", "population")) == list(range(2010, 2020))
    assert sorted(values(tidy, "01001", "pct_less_hs")) == [1990, 2000, 2018]
    assert sorted(values(tidy, "01001", "rucc")) == [2003, 2013]
    assert list(values(tidy, "01001", "white_pct")) == [2016] and list(values(tidy, "01001", "rural_pct")) == [2010]
    assert not frame.duplicated(["county_fips", "variable", "as_of_year"]).any()


def test_state_and_national_rows_are_excluded_and_counted(raw):
    tidy = demographics(raw, ers_unemployment=["0", "1000", "36000", "1001"])  # US, Alabama, New York, Autauga
    assert set(tidy.frame["county_fips"]) == {"01001"}
    assert tidy.counts["ers_unemployment.state_and_national_rows_excluded"] == 3


def test_alaska_is_the_ers_state_row_and_boroughs_are_counted(raw):
    alaska = raw["ers_population"][raw["ers_population"]["State"] == "AK"]["FIPStxt"].tolist()
    tidy = demographics(raw, ers_population=alaska)
    assert set(tidy.frame["county_fips"]) == {S.ALASKA_FIPS}
    assert values(tidy, S.ALASKA_FIPS, "population")[2010] == 713_910
    assert tidy.counts["ers_population.alaska_borough_rows_excluded"] == len(alaska) - 1 == 29


def test_kansas_city_context_row_is_excluded_and_counted(raw):
    tidy = demographics(raw, election_context=["36000", "29095"])
    assert set(tidy.frame["county_fips"]) == {"29095"}
    assert tidy.counts["election_context.kansas_city_excluded"] == 1
    assert tidy.counts["election_context.state_and_national_rows_excluded"] == 0


def test_oglala_lakota_is_recoded_in_the_context_file(raw):
    tidy = demographics(raw, election_context=["46113"])
    assert values(tidy, "46102", "rural_pct") == {2010: pytest.approx(79.979391)}
    assert tidy.counts["election_context.oglala_lakota_recoded"] == 1
    assert tidy.counts["election_context.missing_value_cells"] == 7  # its ACS values are NA


def test_bedford_city_merges_into_bedford_county_by_adding_counts(raw):
    tidy = demographics(raw, ers_education=["51019", "51515"])
    # 1990 adults: county 31,129 (9,721 without high school), city 4,345 (1,732).
    assert values(tidy, "51019", "pct_less_hs")[1990] == pytest.approx(100 * (9_721 + 1_732) / (31_129 + 4_345))
    assert values(tidy, "51019", "pct_less_hs")[2018] == 10.2  # the city has no 2014-18 row: published value kept
    assert values(tidy, "51019", "rucc") == {2003: 3.0, 2013: 2.0}
    assert tidy.counts["ers_education.bedford_city_merged"] == 1
    assert set(tidy.frame["county_fips"]) == {"51019"}


def test_bedford_city_context_row_is_left_to_its_county(raw):
    tidy = demographics(raw, election_context=["51019", "51515"])
    assert values(tidy, "51019", "rural_pct") == {2010: pytest.approx(78.432058)}
    assert tidy.counts["election_context.merged_rows_excluded"] == 1
    assert tidy.counts["election_context.bedford_city_merged"] == 0


def test_puerto_rico_is_excluded_and_counted(raw):
    tidy = demographics(raw, ers_education=["72001", "72003"])
    assert tidy.frame.empty and tidy.counts["ers_education.puerto_rico_rows_excluded"] == 2


def test_missing_values_are_counted_not_kept(raw):
    tidy = demographics(raw, ers_unemployment=["22087"])  # St. Bernard Parish: no 2005-06 labour data
    assert 2005 not in values(tidy, "22087", "unemployment_rate")
    assert tidy.counts["ers_unemployment.missing_value_cells"] == 4  # 2005 and 2006, rate and labour force


def test_demographics_lose_no_row(raw):
    tidy = S.tidy_demographics(
        raw["election_context"], raw["ers_unemployment"], raw["ers_education"], raw["ers_population"]
    )
    for source in ("election_context", "ers_unemployment", "ers_education", "ers_population"):
        counts = {k.split(".", 1)[1]: v for k, v in tidy.counts.items() if k.startswith(f"{source}.")}
        excluded = sum(v for k, v in counts.items() if k.endswith("_excluded"))
        assert len(raw[source]) == counts["counties"] + counts["bedford_city_merged"] + excluded, source
    assert set(tidy.frame["county_fips"]) >= set(S.tidy_county_returns(raw["county_returns"]).frame["county_fips"])
