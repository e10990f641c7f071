"""Print the pinned requirements of the API image: the `api` extra and everything it pulls in, at the versions
installed here. Feeds the SBOM (cyclonedx-py) and the dependency audit (pip-audit) without a network resolve.

    .venv/bin/python scripts/api_requirements.py > api-requirements.txt
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

PROJECT = "election-forecasting"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: set[str]) -> dict[str, str]:
    """Installed name -> version for ``root[extras]`` and its transitive dependencies (markers evaluated)."""
    pinned: dict[str, str] = {}
    pending: list[tuple[str, set[str]]] = [(root, extras)]
    while pending:
        name, wanted = pending.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            sys.exit(f"{name} is required by the API but not installed here; run `make install` first")
        key = _canonical(dist.metadata["Name"])
        seen_before = key in pinned
        pinned[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            if _canonical(requirement.name) == _canonical(PROJECT):
                continue  # self-references such as election-forecasting[api,pipeline] in the dev extra
            if not seen_before or requirement.extras:
                pending.append((requirement.name, set(requirement.extras)))
    pinned.pop(_canonical(PROJECT), None)
    return pinned


if __name__ == "__main__":
    for name, version in sorted(closure(PROJECT, {"api"}).items()):
        print(f"{name}=={version}")
