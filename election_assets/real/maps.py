"""State and county choropleths of real mode's forecast: the Democratic two-party share and the win probability.

The shapes are us-atlas's ``counties-albers-10m.json`` (``shapes/``, ISC licence, see ``shapes/README.md``): TopoJSON
already projected to a 975x610 screen (Albers USA, Alaska and Hawaii as insets, y pointing down), so drawing needs
no projection library. :func:`decode_features` reads TopoJSON into rings of points per feature id; the maps colour
one compound path per county (5-digit FIPS) or state (keyed by postal code here, by 2-digit FIPS in the atlas).

Real mode forecasts Alaska as one unit (``ALASKA_FIPS``): every Alaskan borough takes its value. Pure
NumPy/matplotlib (no Dagster, no geopandas); the decoded geometry is cached per process.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from election_assets.real.sources import ALASKA_FIPS, ALASKA_PREFIX, STATE_FIPS

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.path import Path as MplPath

ATLAS_FILE = Path(__file__).resolve().parent / "shapes" / "counties-albers-10m.json.gz"
DC_FIPS = STATE_FIPS["DC"]

Kind = Literal["probability", "share"]


@dataclass(frozen=True)
class Scale:
    """A colour scale: red (Republican) below the middle, blue (Democratic) above it, clipped at the ends."""

    low: float
    high: float
    label: str
    ticks: tuple[float, ...]


SCALES: dict[str, Scale] = {
    "probability": Scale(0.0, 1.0, "Probability the Democrat wins", (0.0, 0.25, 0.5, 0.75, 1.0)),
    "share": Scale(0.2, 0.8, "Democratic share of the two-party vote", (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)),
}
COLOUR_MAP = "RdBu"
NO_VALUE_COLOUR = "#bdbdbd"
STATE_BORDER_COLOUR = "#262626"
# Between states coloured alone: visible on the pale (close) states and on the dark ones.
STATE_EDGE_COLOUR = "#7f7f7f"
FIGURE_SIZE = (9.75, 6.9)  # inches; the PNG is FIGURE_SIZE * DPI pixels
DPI = 110
# The map's share of the figure: [left, bottom, width, height] in figure fractions; the colour bar sits below.
MAP_BOX = (0.01, 0.14, 0.98, 0.76)
COLOUR_BAR_BOX = (0.28, 0.085, 0.44, 0.028)


# --- TopoJSON ----------------------------------------------------------------------------------------------------


def decode_arcs(topology: Mapping[str, Any]) -> list[np.ndarray]:
    """Every arc as an ``(n, 2)`` array of absolute coordinates. A quantized topology (one with a ``transform``)
    stores each arc's first position absolutely and the rest as deltas from the previous one."""
    transform = topology.get("transform")
    scale = np.asarray(transform["scale"], dtype=float) if transform else None
    translate = np.asarray(transform["translate"], dtype=float) if transform else None
    arcs = []
    for arc in topology["arcs"]:
        points = np.asarray(arc, dtype=float)
        if points.ndim != 2:  # positions of different lengths (extra elements beyond x, y are allowed)
            points = np.array([position[:2] for position in arc], dtype=float)
        points = points[:, :2].reshape(-1, 2)
        if transform:
            points = np.cumsum(points, axis=0) * scale + translate
        arcs.append(points)
    return arcs


def _ring(arcs: Sequence[np.ndarray], indices: Sequence[int]) -> np.ndarray:
    """A ring from its arcs: index ``~i`` (negative) is arc ``i`` reversed; consecutive arcs share an end point,
    which is kept once."""
    parts = []
    for position, index in enumerate(indices):
        points = arcs[index] if index >= 0 else arcs[~index][::-1]
        parts.append(points if position == 0 else points[1:])
    return np.concatenate(parts)


def _geometry_rings(geometry: Mapping[str, Any], arcs: Sequence[np.ndarray]) -> list[np.ndarray]:
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry["arcs"]]
    elif kind == "MultiPolygon":
        polygons = geometry["arcs"]
    elif kind == "GeometryCollection":
        return [ring for part in geometry["geometries"] for ring in _geometry_rings(part, arcs)]
    else:  # points, lines and null geometries have no area to colour
        return []
    return [_ring(arcs, ring) for polygon in polygons for ring in polygon]


def decode_features(
    topology: Mapping[str, Any], name: str, arcs: Sequence[np.ndarray] | None = None
) -> dict[str, list[np.ndarray]]:
    """The rings (exterior and holes, each an ``(n, 2)`` array) of every feature with an id in object ``name``.
    Geometries sharing an id are merged; ``arcs`` (from :func:`decode_arcs`) can be passed to decode them once."""
    arcs = decode_arcs(topology) if arcs is None else arcs
    collection = topology["objects"][name]
    geometries = collection["geometries"] if collection.get("type") == "GeometryCollection" else [collection]
    features: dict[str, list[np.ndarray]] = {}
    for geometry in geometries:
        if geometry.get("id") is not None:
            features.setdefault(str(geometry["id"]), []).extend(_geometry_rings(geometry, arcs))
    return features


def _path(rings: Iterable[np.ndarray]) -> MplPath:
    """One compound path of closed rings; holes are wound opposite to their exterior in TopoJSON, which matplotlib's
    non-zero fill rule leaves empty."""
    from matplotlib.path import Path as MplPath

    vertices, codes = [], []
    for ring in rings:
        ring_codes = np.full(len(ring), MplPath.LINETO, dtype=MplPath.code_type)
        ring_codes[0], ring_codes[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
        vertices.append(ring)
        codes.append(ring_codes)
    return MplPath(np.concatenate(vertices), np.concatenate(codes))


@dataclass(frozen=True)
class Atlas:
    """The atlas's paths in screen coordinates: counties by 5-digit FIPS, states by 2-digit FIPS."""

    counties: dict[str, MplPath]
    states: dict[str, MplPath]
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1


@functools.cache
def atlas() -> Atlas:
    with gzip.open(ATLAS_FILE, "rt", encoding="utf-8") as file:
        topology = json.load(file)
    arcs = decode_arcs(topology)
    return Atlas(
        counties={fips: _path(rings) for fips, rings in decode_features(topology, "counties", arcs).items()},
        states={fips: _path(rings) for fips, rings in decode_features(topology, "states", arcs).items()},
        bbox=tuple(topology["bbox"]),
    )


# --- Values ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How the forecast's counties and the atlas's counties match, Alaska counted as one unit."""

    without_shape: tuple[str, ...]  # forecast counties the atlas cannot draw
    without_value: tuple[str, ...]  # atlas counties the forecast has no value for (drawn grey)


def county_coverage(county_fips: Iterable[str]) -> Coverage:
    forecast = set(county_fips)
    shapes = set(atlas().counties)
    alaska = {fips for fips in shapes if fips.startswith(ALASKA_PREFIX)}
    drawable = shapes | ({ALASKA_FIPS} if alaska else set())
    covered = forecast | (alaska if ALASKA_FIPS in forecast else set())
    return Coverage(tuple(sorted(forecast - drawable)), tuple(sorted(shapes - covered)))


def county_values(values_by_county_fips: pd.Series) -> pd.Series:
    """The values per atlas county: Alaska's boroughs take the value of ``ALASKA_FIPS`` unless given their own."""
    ids = list(atlas().counties)
    values = pd.Series(values_by_county_fips, dtype=float).reindex(ids)
    if ALASKA_FIPS in values_by_county_fips.index:
        alaska = values.index.str.startswith(ALASKA_PREFIX)
        values[alaska] = values[alaska].fillna(float(values_by_county_fips[ALASKA_FIPS]))
    return values


def state_values(values_by_state_po: pd.Series) -> pd.Series:
    """The values per atlas state (2-digit FIPS), from values keyed by postal code."""
    unknown = sorted(set(values_by_state_po.index) - set(STATE_FIPS))
    if unknown:
        raise ValueError(f"not state postal codes: {unknown}")
    by_fips = pd.Series(values_by_state_po, dtype=float).rename(index=STATE_FIPS)
    return by_fips.reindex(list(atlas().states))


def colours(values: Sequence[float] | np.ndarray | pd.Series, kind: Kind) -> np.ndarray:
    """RGBA rows for the values on the ``kind`` colour scale; missing values are grey."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, to_rgba

    scale = SCALES[kind]
    values = np.asarray(values, dtype=float)
    rgba = colormaps[COLOUR_MAP](Normalize(scale.low, scale.high, clip=True)(values))
    rgba[np.isnan(values)] = to_rgba(NO_VALUE_COLOUR)
    return rgba


# --- Drawing -----------------------------------------------------------------------------------------------------


def _figure(title: str) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure  # drawn on its own Agg canvas: no pyplot, no global backend

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    axes = figure.add_axes(MAP_BOX)
    x0, y0, x1, y1 = atlas().bbox
    axes.set_xlim(x0 - 5, x1 + 5)
    axes.set_ylim(y1 + 5, y0 - 5)  # screen coordinates: y points down
    axes.set_aspect("equal")
    axes.set_axis_off()
    figure.suptitle(title, fontsize=15, fontweight="bold", y=0.965)
    return figure, axes


def _add_paths(axes: Any, paths: Sequence[MplPath], **style: Any) -> None:
    from matplotlib.collections import PathCollection

    axes.add_collection(PathCollection(paths, transform=axes.transData, **style), autolim=False)


def _legend(figure: Figure, kind: Kind, missing: int) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    scale = SCALES[kind]
    bar_axes = figure.add_axes(COLOUR_BAR_BOX)
    mappable = ScalarMappable(Normalize(scale.low, scale.high), colormaps[COLOUR_MAP])
    extend = "neither" if (scale.low, scale.high) == (0.0, 1.0) else "both"
    bar = figure.colorbar(mappable, cax=bar_axes, orientation="horizontal", ticks=scale.ticks, extend=extend)
    bar.ax.set_xticklabels([f"{tick:.0%}" for tick in scale.ticks], fontsize=9)
    bar.ax.tick_params(length=3)
    bar.outline.set_linewidth(0.5)
    bar.set_label(scale.label, fontsize=10, labelpad=4)
    left, bottom, width, height = COLOUR_BAR_BOX
    middle = bottom + height / 2
    figure.text(left - 0.015, middle, "Republican", ha="right", va="center", fontsize=10, color="#b2182b")
    figure.text(left + width + 0.015, middle, "Democratic", ha="left", va="center", fontsize=10, color="#2166ac")
    if missing:
        figure.legend(
            handles=[Patch(facecolor=NO_VALUE_COLOUR, edgecolor="none", label=f"no forecast ({missing})")],
            loc="lower right",
            bbox_to_anchor=(0.99, 0.02),
            frameon=False,
            fontsize=9,
        )


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def state_map_figure(values_by_state_po: pd.Series, title: str, kind: Kind) -> Figure:
    """The states coloured by ``values_by_state_po`` (keyed by postal code; states without a value grey), with DC
    drawn as a dot large enough to see."""
    shapes = atlas()
    values = state_values(values_by_state_po)
    figure, axes = _figure(title)
    fill = colours(values, kind)
    _add_paths(axes, list(shapes.states.values()), facecolors=fill, edgecolors=STATE_EDGE_COLOUR, linewidths=0.6)
    if DC_FIPS in shapes.states:
        x, y = shapes.states[DC_FIPS].vertices.mean(axis=0)
        axes.scatter(
            [x], [y], s=24, c=fill[[values.index.get_loc(DC_FIPS)]], edgecolors=STATE_EDGE_COLOUR, linewidths=0.6
        )
    _legend(figure, kind, int(values.isna().sum()))
    return figure


def county_map_figure(values_by_county_fips: pd.Series, title: str, kind: Kind) -> Figure:
    """The counties coloured by ``values_by_county_fips`` (5-digit FIPS; Alaska as ``ALASKA_FIPS``; counties
    without a value grey), state borders drawn over them."""
    shapes = atlas()
    values = county_values(values_by_county_fips)
    figure, axes = _figure(title)
    fill = colours(values, kind)
    # A hairline in the fill colour closes the antialiasing seams between neighbouring counties.
    _add_paths(axes, list(shapes.counties.values()), facecolors=fill, edgecolors=fill, linewidths=0.15)
    _add_paths(axes, list(shapes.states.values()), facecolors="none", edgecolors=STATE_BORDER_COLOUR, linewidths=0.55)
    _legend(figure, kind, int(values.isna().sum()))
    return figure


def state_map_png(values_by_state_po: pd.Series, title: str, kind: Kind) -> bytes:
    return _png(state_map_figure(values_by_state_po, title, kind))


def county_map_png(values_by_county_fips: pd.Series, title: str, kind: Kind) -> bytes:
    return _png(county_map_figure(values_by_county_fips, title, kind))
