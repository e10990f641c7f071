"""Real mode's maps: the TopoJSON decoder, the atlas against the forecast's states and counties, and the PNGs."""

from io import BytesIO

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from election_assets.real import maps, sources
from election_assets.real.features import NEXT_ELECTION


def _squares(quantized: bool) -> dict:
    """Two unit squares side by side sharing the arc x = 1; the right square runs it backwards (``~0``)."""
    absolute = [
        [[1, 0], [1, 1]],  # 0: the shared edge, upwards
        [[1, 1], [0, 1], [0, 0], [1, 0]],  # 1: the rest of the left square
        [[1, 0], [2, 0], [2, 1], [1, 1]],  # 2: the rest of the right square
    ]
    topology = {
        "type": "Topology",
        "objects": {
            "squares": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "id": "L", "arcs": [[0, 1]]},
                    {"type": "MultiPolygon", "id": "R", "arcs": [[[~0, 2]]]},
                    {"type": None},
                ],
            }
        },
    }
    if not quantized:
        return topology | {"arcs": [[[10 + 0.5 * x, 20 + 2 * y] for x, y in arc] for arc in absolute]}
    deltas = [[arc[0]] + [[x - px, y - py] for (px, py), (x, y) in zip(arc, arc[1:], strict=False)] for arc in absolute]
    return topology | {"arcs": deltas, "transform": {"scale": [0.5, 2], "translate": [10, 20]}}


@pytest.mark.parametrize("quantized", [True, False])
def test_topojson_decoder_joins_arcs_and_reverses_negative_indices(quantized):
    features = maps.decode_features(_squares(quantized), "squares")

    assert set(features) == {"L", "R"}
    [left], [right] = features["L"], features["R"]
    to_screen = np.array([0.5, 2]), np.array([10, 20])
    np.testing.assert_allclose(left, np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]]) * to_screen[0] + to_screen[1])
    np.testing.assert_allclose(right, np.array([[1, 1], [1, 0], [2, 0], [2, 1], [1, 1]]) * to_screen[0] + to_screen[1])


def test_every_state_and_dc_has_a_shape():
    assert set(maps.atlas().states) == set(sources.STATE_FIPS.values())
    assert len(maps.atlas().counties) == 3142


def test_the_forecast_counties_all_have_a_shape():
    counties = sources.tidy_county_returns(sources.read_source("county_returns")).frame
    forecast = counties.loc[counties["year"] == NEXT_ELECTION - 4, "county_fips"]  # the counties forecast

    coverage = maps.county_coverage(forecast)

    # Alaska's one unit covers its 29 boroughs; the atlas's only county without a forecast is Kalawao, HI, which
    # has no row in the returns (its few voters vote in Maui County).
    assert coverage.without_shape == ()
    assert coverage.without_value == ("15005",)
    assert {"46102", "02158", "09001"} <= set(maps.atlas().counties)  # Oglala Lakota, Kusilvak, pre-2022 CT


def test_alaskan_boroughs_take_the_alaska_value():
    values = maps.county_values(pd.Series({sources.ALASKA_FIPS: 0.3, "01001": 0.6}))

    alaska = values[values.index.str.startswith(sources.ALASKA_PREFIX)]
    assert len(alaska) == 29 and (alaska == 0.3).all()
    assert values["01001"] == 0.6
    assert values.drop(["01001", *alaska.index]).isna().all()


def test_state_values_reject_codes_that_are_not_states():
    with pytest.raises(ValueError, match="PR"):
        maps.state_values(pd.Series({"PR": 0.5}))


def test_colours_run_from_red_to_blue_and_grey_without_a_value():
    red, middle, blue, missing = maps.colours([0.0, 0.5, 1.0, np.nan], "probability")
    assert red[0] > 0.3 > red[2] and blue[2] > 0.3 > blue[0]
    assert min(middle[:3]) > 0.9  # close to white
    assert missing[0] == missing[1] == missing[2] < 0.9
    # The share scale is clipped at 20% and 80%.
    np.testing.assert_allclose(maps.colours([0.05, 0.95], "share"), maps.colours([0.2, 0.8], "share"))


def _pixel(figure, png: bytes, point: np.ndarray) -> np.ndarray:
    """The colour of the PNG at a point in atlas coordinates."""
    pixels = image.imread(BytesIO(png), format="png")
    x, y = figure.axes[0].transData.transform(point)
    return pixels[int(round(pixels.shape[0] - y)), int(round(x)), :3]


def test_state_map_renders_and_colours_follow_the_values():
    figure = maps.state_map_figure(pd.Series({"KS": 1.0, "CO": 0.0}), "test", "probability")
    png = maps._png(figure)

    assert png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == tuple(round(inches * maps.DPI) for inches in maps.FIGURE_SIZE)
    shapes = maps.atlas().states
    kansas = _pixel(figure, png, shapes[sources.STATE_FIPS["KS"]].vertices.mean(axis=0))
    colorado = _pixel(figure, png, shapes[sources.STATE_FIPS["CO"]].vertices.mean(axis=0))
    texas = _pixel(figure, png, shapes[sources.STATE_FIPS["TX"]].vertices.mean(axis=0))
    assert kansas[2] > 0.3 > kansas[0]  # blue
    assert colorado[0] > 0.3 > colorado[2]  # red
    np.testing.assert_allclose(texas, maps.colours([np.nan], "share")[0, :3], atol=0.02)  # no value: grey


def test_county_map_renders():
    values = pd.Series(0.5, index=[sources.ALASKA_FIPS, "01001", "06037"])
    png = maps.county_map_png(values, "test", "share")

    assert png.startswith(b"\x89PNG") and len(png) > 10_000
