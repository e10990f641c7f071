"""The election-night page (``GET /live``): one HTML document with the US map inline as SVG, and its script and style
sheet (``static/``), all served by the API itself: nothing is loaded from elsewhere.

The map's shapes are the states of us-atlas's pre-projected TopoJSON, the file real mode's maps draw
(``election_assets/real/shapes/counties-albers-10m.json.gz``, ISC licence): decoded here in pure Python into one SVG
path per state (its 2-digit FIPS id mapped to the postal code by ``core.states``), once per process, on the first
request. The coordinates are already a 975x610 screen (Albers USA, y down), so there is no projection to do.
"""

from __future__ import annotations

import functools
import gzip
import html
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from election_assets.core.states import STATE_PO_BY_FIPS

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_PATH = "/live/static"
_ATLAS = ("shapes", "counties-albers-10m.json.gz")
# DC is a few pixels wide on the map: it gets a marker beside it as well, which takes its colour and call.
_DC_MARKER = (880.0, 300.0)


@dataclass(frozen=True)
class StateShape:
    state_po: str
    name: str
    path: str  # SVG path data, screen coordinates rounded to 0.1 px, relative moves after the first point
    centroid: tuple[float, float]  # of the path's points: where a label or a marker goes


def _decode_arcs(topology: Mapping[str, Any], used: set[int]) -> dict[int, list[tuple[float, float]]]:
    """The absolute points of the arcs in ``used``: a quantized topology stores each arc's first position as is
    and the others as deltas from the previous one, then ``transform`` maps them to the screen."""
    transform = topology.get("transform")
    (sx, sy), (tx, ty) = (transform["scale"], transform["translate"]) if transform else ((1, 1), (0, 0))
    arcs: dict[int, list[tuple[float, float]]] = {}
    for index in used:
        x = y = 0.0
        points = []
        for position in topology["arcs"][index]:
            if transform:
                x, y = x + position[0], y + position[1]
                points.append((x * sx + tx, y * sy + ty))
            else:
                points.append((float(position[0]), float(position[1])))
        arcs[index] = points
    return arcs


def _arc_indices(nested: Any) -> Iterator[int]:
    if isinstance(nested, int):
        yield nested if nested >= 0 else ~nested
    else:
        for item in nested:
            yield from _arc_indices(item)


def _rings(geometry: Mapping[str, Any]) -> list[Sequence[int]]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return list(geometry["arcs"])
    if kind == "MultiPolygon":
        return [ring for polygon in geometry["arcs"] for ring in polygon]
    return []


def _ring_points(arcs: Mapping[int, list[tuple[float, float]]], ring: Sequence[int]) -> list[tuple[float, float]]:
    """A ring from its arcs: index ``~i`` is arc ``i`` reversed; consecutive arcs share an end point, kept once."""
    points: list[tuple[float, float]] = []
    for position, index in enumerate(ring):
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if position == 0 else arc[1:])
    return points


def _path_data(rings: list[list[tuple[float, float]]]) -> str:
    """Closed subpaths; every point rounded to 0.1 px first, then written relative to the previous rounded one,
    so the rounding does not accumulate. TopoJSON winds holes opposite to their exterior (the SVG default fill
    rule, nonzero, leaves them empty)."""
    parts = []
    for ring in rings:
        rounded = [(round(x * 10), round(y * 10)) for x, y in ring]
        if rounded and rounded[0] == rounded[-1]:
            rounded.pop()
        if len(rounded) < 3:
            continue
        (x0, y0), steps = rounded[0], []
        previous = rounded[0]
        for point in rounded[1:]:
            dx, dy = point[0] - previous[0], point[1] - previous[1]
            if dx or dy:
                steps.append(f"{dx / 10:g} {dy / 10:g}")
            previous = point
        parts.append(f"M{x0 / 10:g} {y0 / 10:g}l" + " ".join(steps) + "z")
    return "".join(parts)


def decode_states(topology: Mapping[str, Any]) -> list[StateShape]:
    """The ``states`` object of a us-atlas topology as one SVG path per state, in postal-code order."""
    geometries = topology["objects"]["states"]["geometries"]
    arcs = _decode_arcs(topology, {index for geometry in geometries for index in _arc_indices(geometry["arcs"])})
    shapes = []
    for geometry in geometries:
        state_po = STATE_PO_BY_FIPS.get(str(geometry.get("id")))
        if state_po is None:  # territories, if an atlas has them: the live estimate covers the states and DC
            continue
        rings = [_ring_points(arcs, ring) for ring in _rings(geometry)]
        # The centroid of the largest ring's points: the mainland of a state with islands.
        largest = max(rings, key=len)
        centroid = (sum(x for x, _ in largest) / len(largest), sum(y for _, y in largest) / len(largest))
        name = (geometry.get("properties") or {}).get("name", state_po)
        shapes.append(StateShape(state_po, name, _path_data(rings), centroid))
    return sorted(shapes, key=lambda shape: shape.state_po)


@functools.cache
def state_shapes() -> tuple[StateShape, ...]:
    atlas = resources.files("election_assets.real").joinpath(*_ATLAS)
    with atlas.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as file:
        topology = json.load(file)
    return tuple(decode_states(topology))


def map_svg() -> str:
    """The map: one ``<path class="state" data-state="PA">`` per state, the hatches that fill called states, and
    DC's marker."""
    shapes = state_shapes()
    paths = []
    for shape in shapes:
        title = html.escape(shape.name)
        paths.append(
            f'<path class="state" id="state-{shape.state_po}" data-state="{shape.state_po}" '
            f'data-name="{title}" d="{shape.path}"><title>{title}</title></path>'
        )
    dc = next(shape for shape in shapes if shape.state_po == "DC")
    x, y = _DC_MARKER
    return (
        '<svg id="map" viewBox="0 0 975 610" role="img" aria-label="Map of the states coloured by the leading '
        'candidate\'s probability of carrying them" xmlns="http://www.w3.org/2000/svg">'
        "<defs>"
        '<pattern id="hatch-D" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="7" height="7" fill="#08306b"/><line x1="0" y1="0" x2="0" y2="7" stroke="#6baed6" '
        'stroke-width="3"/></pattern>'
        '<pattern id="hatch-R" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="7" height="7" fill="#67000d"/><line x1="0" y1="0" x2="0" y2="7" stroke="#fc9272" '
        'stroke-width="3"/></pattern>'
        # No estimate yet: pale grey with dots, apart from the palest colour of a close race.
        '<pattern id="no-data" width="4" height="4" patternUnits="userSpaceOnUse">'
        '<rect width="4" height="4" fill="#e3e6eb"/><circle cx="2" cy="2" r="0.75" fill="#bcc2cc"/></pattern>'
        "</defs>"
        f'<g id="states">{"".join(paths)}</g>'
        f'<line class="dc-leader" x1="{dc.centroid[0]:.1f}" y1="{dc.centroid[1]:.1f}" x2="{x}" y2="{y}"/>'
        f'<circle class="state-marker" id="marker-DC" data-state="DC" cx="{x}" cy="{y}" r="7">'
        "<title>District of Columbia</title></circle>"
        f'<text class="marker-label" x="{x + 11}" y="{y + 4}">DC</text>'
        "</svg>"
    )


@functools.lru_cache(maxsize=4)
def page_html(call_probability: float) -> bytes:
    """The page, and (``page_html_gzip``) its gzip encoding, made once per call threshold."""
    template = Template((TEMPLATE_DIR / "live.html").read_text(encoding="utf-8"))
    threshold = f"{100 * call_probability:.4g}%"
    return template.substitute(map_svg=map_svg(), static=STATIC_PATH, call_threshold=threshold).encode()


@functools.lru_cache(maxsize=4)
def page_html_gzip(call_probability: float) -> bytes:
    return gzip.compress(page_html(call_probability), compresslevel=9, mtime=0)
