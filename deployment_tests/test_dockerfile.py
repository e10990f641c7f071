"""The Dockerfile, checked statically (no Docker daemon is needed or assumed): base images pinned, multi-stage, both
targets non-root with the UID the manifests run as, the API target built from the `api` extra only, and the ports,
paths, entry points and Dagster home that k8s/, the Helm values and dagster.prod.yaml expect. A fresh pip resolution
of the `api` extra (dry run against the package index) proves the API image cannot pull in the pipeline stack."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UID = "10001"
PIPELINE_ONLY = {
    "dagster",
    "dagster-webserver",
    "mlflow",
    "mlflow-skinny",
    "evidently",
    "pandas",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "pandera",
    "pyarrow",
    "dagster-mlflow",
    "dagster-postgres",
    "dagster-k8s",
}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kind, args in self.instructions if kind == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def _parse() -> tuple[dict[str, str], dict[str, Stage]]:
    args, stages, current = {}, {}, None
    for keyword, rest in _instructions((ROOT / "Dockerfile").read_text()):
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {rest}"
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            current = stages[match.group(2)] = Stage(match.group(2), base)
        else:
            assert current is not None, f"{keyword} before the first FROM"
            current.instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = _parse()


def _lineage(name: str) -> list[Stage]:
    chain = [STAGES[name]]
    while chain[-1].base in STAGES:
        chain.append(STAGES[chain[-1].base])
    return chain


def _env(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(_lineage(name)):
        for args in stage.all("ENV"):
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def _exec_form(args: str) -> list[str]:
    return json.loads(args)


def test_base_images_are_pinned_and_the_build_is_multi_stage():
    external = {stage.base for stage in STAGES.values() if stage.base not in STAGES}
    assert external, STAGES
    for image in external:
        pinned_digest = re.search(r"@sha256:[0-9a-f]{64}$", image)
        pinned_tag = re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", image)
        assert pinned_digest or pinned_tag, f"{image}: pin an exact version tag (x.y.z) or a digest"
    # The Python in the image is the one the project supports and the one the tests run on.
    (python_image,) = external
    minor = re.search(r"python:(\d+\.\d+)\.", python_image).group(1)
    assert minor == f"{sys.version_info.major}.{sys.version_info.minor}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={minor}" in requires or minor > requires.split(",")[0].lstrip(">=")
    # Build stages install; the two targets start again from the bare runtime and copy only the virtualenv.
    for target, build in (("api", "api-build"), ("dagster", "dagster-build")):
        assert "runtime" in [s.name for s in _lineage(target)], target
        copies = [c for c in STAGES[target].all("COPY") if c.startswith("--from=")]
        assert [c.split()[0] for c in copies] == [f"--from={build}"], copies
        assert STAGES[target].all("RUN") == [] or target == "dagster"  # dagster only creates its directories
        assert not any(s.all("RUN") and "pip" in " ".join(s.all("RUN")) for s in _lineage(target)[:2])


def test_both_targets_run_as_the_non_root_uid_of_the_manifests():
    runtime_user = " ".join(STAGES["runtime"].all("RUN"))
    assert f"useradd --uid {UID}" in runtime_user and f"--gid {UID}" in runtime_user
    for target in ("api", "dagster"):
        users = [u for s in reversed(_lineage(target)) for u in s.all("USER")]
        assert users and users[-1] == f"{UID}:{UID}", f"{target}: last USER must be numeric and non-root"
    deployment = yaml.safe_load((ROOT / "k8s" / "base" / "deployment.yaml").read_text())
    assert str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == UID
    values = yaml.safe_load((ROOT / "k8s" / "dagster" / "values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    assert str(code["podSecurityContext"]["runAsUser"]) == UID


def test_api_target_installs_only_the_api_extra():
    (install,) = STAGES["api-build"].all("RUN")[:1]
    assert re.search(r"pip install --constraint requirements/api\.txt \"\.\[api\]\"", install), install
    assert "requirements ./requirements" in STAGES["source"].all("COPY")
    guard = STAGES["api-build"].all("RUN")[1]
    for module in ("dagster", "mlflow", "evidently"):
        assert f"'{module}'" in guard, f"the build-time guard must reject {module}"
    (pipeline_install,) = STAGES["dagster-build"].all("RUN")
    assert '".[pipeline]"' in pipeline_install


def test_api_target_matches_the_deployment():
    env = _env("api")
    deployment = yaml.safe_load((ROOT / "k8s" / "base" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert STAGES["api"].all("EXPOSE") == [str(port)] and env["PORT"] == str(port)
    assert env["HOST"] == "0.0.0.0"  # noqa: S104 - inside the container
    assert _exec_form(STAGES["api"].all("ENTRYPOINT")[0]) == ["python", "-m", "election_api"]
    (healthcheck,) = STAGES["api"].all("HEALTHCHECK")
    assert "/health" in healthcheck and container["livenessProbe"]["httpGet"]["path"] == "/health"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {env["ELECTION_MODEL_STORE"], env["ELECTION_REPORTS_DIR"]} <= mounts
    # The real-mode store (ELECTION_API_MODE=real) is a directory on the model-store mount, where the dagster
    # target's run pods publish it; the base ConfigMap names the same paths as the image.
    assert Path(env["ELECTION_REAL_MODEL_STORE"]).parent == Path(env["ELECTION_MODEL_STORE"])
    kustomization = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    (generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "election-api-config"]
    config = dict(item.split("=", 1) for item in generator["literals"])
    for name in ("ELECTION_MODEL_STORE", "ELECTION_REAL_MODEL_STORE", "ELECTION_REPORTS_DIR"):
        assert config[name] == env[name], name


def test_dagster_target_matches_the_helm_values_and_the_instance():
    env = _env("dagster")
    values = yaml.safe_load((ROOT / "k8s" / "dagster" / "values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    command = _exec_form(STAGES["dagster"].all("CMD")[0])
    # The chart runs `dagster code-server start -h 0.0.0.0 -p <port> <codeServerArgs>`; the image's own CMD is the
    # same server, so `docker run` of the image and the chart's pod serve the same code location.
    assert command[:3] == ["dagster", "code-server", "start"]
    assert command[command.index("-p") + 1] == str(code["port"]) and STAGES["dagster"].all("EXPOSE") == ["3030"]
    for flag in ("-m", "-a"):
        assert command[command.index(flag) + 1] == code["codeServerArgs"][code["codeServerArgs"].index(flag) + 1]
    assert command[command.index("-m") + 1] == "election_assets.definitions"
    # DAGSTER_HOME: the chart's default, and the path the run launcher mounts the instance ConfigMap under.
    prod = yaml.safe_load((ROOT / "instance" / "dagster.prod.yaml").read_text())
    assert env["DAGSTER_HOME"] == prod["run_launcher"]["config"]["dagster_home"] == "/opt/dagster/dagster_home"
    # The image's defaults equal the paths the run pods get and mount: the three claims, with the real-mode store
    # inside the model store's; the other mounts are the emptyDir scratch space of a read-only root filesystem.
    launcher = prod["run_launcher"]["config"]
    launcher_env = dict(item.split("=", 1) for item in launcher["env_vars"])
    paths = ("ELECTION_DATA_DIR", "ELECTION_MODEL_STORE", "ELECTION_REAL_MODEL_STORE", "ELECTION_REPORTS_DIR")
    for name in paths:
        assert env[name] == launcher_env[name], name
    claims = {v["name"] for v in launcher["volumes"] if "persistentVolumeClaim" in v}
    claim_mounts = {m["mountPath"] for m in launcher["volume_mounts"] if m["name"] in claims}
    assert claim_mounts == {launcher_env[name] for name in paths if name != "ELECTION_REAL_MODEL_STORE"}
    assert Path(env["ELECTION_REAL_MODEL_STORE"]).parent == Path(env["ELECTION_MODEL_STORE"])
    scratch = {m["mountPath"] for m in launcher["volume_mounts"] if m["name"] not in claims}
    assert scratch == {"/tmp", env["DAGSTER_HOME"]}  # noqa: S108 - emptyDir mount points
    # The code server (the same image) gets the same paths.
    code_env = {e["name"]: e["value"] for e in code["env"]}
    assert {name: code_env[name] for name in paths} == {name: env[name] for name in paths}


_OFFLINE_HINTS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeout",
    "Could not fetch URL",
    "Max retries exceeded",
)


def test_a_fresh_resolution_of_the_api_extra_pulls_in_no_pipeline_package(tmp_path):
    """What `pip install --constraint requirements/api.txt ".[api]"` in the api-build stage installs, resolved from
    the package index (a dry run: nothing is installed): exactly the pinned versions, and no pipeline package.
    Complements test_supply_chain.py, which checks the pins against the versions installed here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["api"]]
    report = tmp_path / "report.json"
    result = subprocess.run(  # noqa: S603 - the venv's own pip
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--disable-pip-version-check",
            "--report",
            str(report),
            "--constraint",
            str(ROOT / "requirements" / "api.txt"),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and any(hint in result.stderr for hint in _OFFLINE_HINTS):
        pytest.skip(f"package index unreachable: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    resolved = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    names = set(resolved)
    assert {"numpy", "litestar", "msgspec", "uvicorn", "prometheus-client"} <= names
    assert not names & PIPELINE_ONLY, names & PIPELINE_ONLY
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements" / "api.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert resolved == pins
