"""Both images, built from the Dockerfile and run as the Kubernetes manifests run them (test_dockerfile.py checks the
same file statically). There is no Docker daemon here: podman builds the `api` and `dagster` targets on a Debian
bookworm base made with debootstrap (podman_images.py), passed through the Dockerfile's PYTHON_IMAGE argument.

Every container runs with a read-only root filesystem as UID 10001, without capabilities, with only the paths the
manifests mount writable (tmpfs for the emptyDir volumes, host directories for the claims), and the Dagster ones
without a network: nothing is downloaded at run time. One chain proves both images together, as an operator uses
them: the dagster image serves its code location (the Helm chart's code server) and materializes the synthetic graph
(a small run config) into a model store, which the api image then serves read-only: /ready, /predict, the model
version the pipeline published, and the image's HEALTHCHECK."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import SMALL_RUN_CONFIG
from deployment_tests import podman_images as images
from election_api_tests.conftest import VALID_ROW

pytestmark = pytest.mark.slow

DAGSTER_HOME = "/opt/dagster/dagster_home"
CODE_LOCATION = ("-m", "election_assets.definitions", "-a", "defs")
# The synthetic graph in one run, with the test suite's small run config (conftest.py) mounted at /config.
PIPELINE_RUN = ("dagster", "job", "execute", *CODE_LOCATION, "-j", "election_pipeline", "-c", "/config/run.yaml")


@pytest.fixture(scope="module")
def built_images() -> list[str]:
    """The base image (debootstrapped once per machine) and both targets; the timings of each step."""
    if images.podman_path() is None:
        pytest.skip("podman not found: apt-get install podman runc debootstrap (.ci/run installs them)")
    log: list[str] = []
    images.ensure_base_image(log)
    images.build_target("api", images.API_IMAGE, log)
    images.build_target("dagster", images.DAGSTER_IMAGE, log)
    return log


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    # The claims as host directories owned by the containers' user; removed afterwards (the pipeline's data
    # directory holds its MLflow store and the IO manager's files).
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def _wait_for(check, what: str, timeout: float, container: str) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, AssertionError) as error:
            last = error
        state = images.podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state not in ("running", "created", "configured"):
            break
        time.sleep(1)
    logs = images.podman("logs", container, check=False)
    raise AssertionError(
        f"{what} within {timeout:.0f} s: {last!r}\n--- logs\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
    )


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a local container
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_dagster_image_materializes_the_graph_and_the_api_image_serves_its_model(built_images, workdir):
    started = time.monotonic()
    models, reports, data = (images.owned_directory(workdir / name) for name in ("models", "reports", "data"))
    config = workdir / "config"
    config.mkdir()
    (config / "run.yaml").write_text(yaml.safe_dump(SMALL_RUN_CONFIG))
    claims = [f"{models}:/models", f"{reports}:/reports", f"{data}:/data", f"{config}:/config:ro"]

    with images.containers() as started_containers:
        # The code server as the Helm chart runs it: its default command, an empty DAGSTER_HOME (an emptyDir there, a
        # directory the user owns here: podman's tmpfs over an image directory ignores its mode), /tmp as tmpfs, the
        # model store read-only. It loads the code location while the pipeline runs below.
        code_server = images.container_name("code-server")
        started_containers.append(code_server)
        images.podman(
            *images.run_args(
                images.DAGSTER_IMAGE,
                name=code_server,
                volumes=[
                    f"{models}:/models:ro",
                    f"{images.owned_directory(workdir / 'code-server-home')}:{DAGSTER_HOME}",
                ],
                tmpfs=["/tmp"],
                detach=True,
            )
        )

        # A run pod: the synthetic graph, materialized into the claims. DAGSTER_HOME is empty (a throwaway SQLite
        # instance with Dagster's defaults, telemetry on: it writes ~/.dagster under HOME=/tmp).
        pipeline = images.container_name("pipeline")
        started_containers.append(pipeline)
        run = images.podman(
            *images.run_args(
                images.DAGSTER_IMAGE,
                *PIPELINE_RUN,
                name=pipeline,
                volumes=[*claims, f"{images.owned_directory(workdir / 'run-home')}:{DAGSTER_HOME}"],
                tmpfs=["/tmp"],
            ),
            timeout=900,
        )
        assert "RUN_SUCCESS" in run.stdout + run.stderr, (run.stdout[-3000:], run.stderr[-3000:])
        version = json.loads((models / "LATEST").read_text())["version"]
        assert (models / "versions" / version).is_dir(), sorted(p.name for p in models.rglob("*"))

        def code_server_healthy() -> bool:
            probe = ("dagster", "api", "grpc-health-check", "-p", "3030")
            return images.podman("exec", code_server, *probe, check=False, timeout=60).returncode == 0

        _wait_for(code_server_healthy, "the code server answers its gRPC health check", 180, code_server)
        user = images.podman("exec", code_server, "id", "-u").stdout.strip()
        assert user == str(images.UID)
        images.podman("rm", "--force", "--time", "5", code_server)

        # The API as the Deployment runs it: read-only, UID 10001, the model store and reports mounted read-only.
        api = images.container_name("api")
        started_containers.append(api)
        port = images.free_port()
        images.podman(
            *images.run_args(
                images.API_IMAGE,
                name=api,
                volumes=[f"{models}:/models:ro", f"{reports}:/reports:ro"],
                tmpfs=["/tmp"],
                env={"PORT": str(port), "HOST": "127.0.0.1"},
                network="host",
                detach=True,
            )
        )
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _http(f"{base}/ready")[0] == 200, "GET /ready answers 200", 60, api)
        status, ready = _http(f"{base}/ready")
        assert status == 200, ready
        status, prediction = _http(f"{base}/predict", VALID_ROW)
        assert status == 200, prediction
        assert prediction["model_version"] == version, (prediction, version)
        assert prediction["predicted_winner"] in prediction["probabilities"], prediction
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-6, prediction
        status, error = _http(f"{base}/predict", {**VALID_ROW, "population": -1})
        assert status in (400, 422), (status, error)
        assert images.podman("exec", api, "id", "-u").stdout.strip() == str(images.UID)
        # The image's HEALTHCHECK (kept by building in docker format) passes.
        images.podman("healthcheck", "run", api)

    for line in [*built_images, f"runs (pipeline, code server, api): {time.monotonic() - started:.0f} s"]:
        print(line)
