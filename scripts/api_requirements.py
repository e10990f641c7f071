"""Print the pinned requirements of the API image: the `api` extra and everything it pulls in, at the versions
installed here. The output is committed as requirements/api.txt, which the Dockerfile's api target and `make install`
use as constraints, and which feeds the SBOM (cyclonedx-py) and the dependency audit (pip-audit).

    .venv/bin/python scripts/api_requirements.py > requirements/api.txt    # after changing the api extra
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

PROJECT = "election-forecasting"
HEADER = """\
# The API image's dependencies, pinned: the `api` extra and everything it pulls in. The Dockerfile's api target and
# `make install` both install with this file as constraints, so the tests, the SBOM and the dependency audit describe
# the image. Regenerate after changing the api extra:
#   .venv/bin/python scripts/api_requirements.py > requirements/api.txt
"""


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
    sys.stdout.write(HEADER)
    for name, version in sorted(closure(PROJECT, {"api"}).items()):
        print(f"{name}=={version}")
