"""Building and running the Dockerfile's two images with podman (there is no Docker daemon here), for
test_images.py. The base image is a Debian bookworm root filesystem made with debootstrap (Python 3.11, as the
Dockerfile's default python:3.11 image) and passed in through the Dockerfile's PYTHON_IMAGE argument; it is made
once per machine and then found in podman's image store, and podman's layer cache makes rebuilds of the targets fast.

Every podman command runs with runc and explicit open-file and process limits (crun and the default limits fail on
these machines)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "localhost/election-base:bookworm"
API_IMAGE = "localhost/election-forecasting-api:test"
DAGSTER_IMAGE = "localhost/election-forecasting-dagster:test"
UID = 10001
# What the base needs beyond debootstrap's minbase: the Python the Dockerfile's stages call as `python`, venv and pip
# for the build stages, and the CA bundle pip verifies the package index with.
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_LIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")


def podman_path() -> str | None:
    return shutil.which("podman")


def podman(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    command = [podman_path() or "podman", "--runtime", "runc", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)  # noqa: S603
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def _host_index_urls() -> dict[str, list[str]]:
    """The package indexes pip on this machine uses (its config files and PIP_* variables), so that pip in the
    build reaches the same index; local (file://) indexes are left out, a container cannot see them."""
    listing = subprocess.run(  # noqa: S603 - the interpreter's own pip
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    found: dict[str, list[str]] = {"index-url": [], "extra-index-url": []}
    for line in listing.splitlines():
        match = re.fullmatch(r"[^.]*\.((?:extra-)?index-url)='(.*)'", line.strip())
        if match:
            urls = [url for url in match.group(2).split() if url.startswith(("http://", "https://"))]
            found[match.group(1)] += [url for url in urls if url not in found[match.group(1)]]
    found["index-url"] = found["index-url"][-1:]  # one index: the last setting wins (environment over files)
    return found


def base_pip_conf() -> str:
    lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt", "timeout = 120"]
    for key, urls in _host_index_urls().items():
        if urls:
            lines.append(f"{key} = {' '.join(urls)}")
    return "\n".join(lines) + "\n"


def build_base_image(log: list[str]) -> None:
    """debootstrap a minimal bookworm with Python 3.11 and import it as BASE_IMAGE. Needs root and the network."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise AssertionError("debootstrap not found: apt-get install debootstrap (.ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="election-base-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603
            [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm", str(rootfs)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        import_rootfs(rootfs)
        log.append(f"base image {BASE_IMAGE}: debootstrap and import in {time.monotonic() - started:.0f} s")
        print(log[-1], flush=True)


def import_rootfs(rootfs: Path) -> None:
    """Make a debootstrapped tree a base image: pip set up to reach this machine's index, no apt caches."""
    # pip in the build verifies the index with this machine's CA bundle (which may hold a proxy's CA).
    if HOST_CA_BUNDLE.exists():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/pip.conf").write_text(base_pip_conf())
    # apt's downloaded packages and lists are not part of an image.
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / cache).glob("*"):
            if path.is_file():
                path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)  # noqa: S603, S607
    try:
        changes = ["--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]']
        podman("import", *changes, "-", BASE_IMAGE, stdin=tar.stdout, timeout=600)
    finally:
        tar.stdout.close()
        tar.wait()


def ensure_base_image(log: list[str]) -> None:
    if image_exists(BASE_IMAGE):
        log.append(f"base image {BASE_IMAGE}: cached in podman's store")
    else:
        build_base_image(log)


def build_target(target: str, tag: str, log: list[str]) -> None:
    started = time.monotonic()
    # --format docker keeps the api target's HEALTHCHECK (the OCI image format has none).
    build = ["build", "--network", "host", "--layers", "--format", "docker"]
    build += ["--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--target", target, "-t", tag, str(ROOT)]
    podman(*build, timeout=3600, cwd=ROOT)
    log.append(f"target {target}: built in {time.monotonic() - started:.0f} s")
    print(log[-1], flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_args(
    image: str,
    *command: str,
    name: str,
    volumes: Sequence[str] = (),
    tmpfs: Sequence[str] = (),
    env: dict[str, str] | None = None,
    network: str = "none",
    detach: bool = False,
) -> list[str]:
    """`podman run` as the Kubernetes manifests run the images: read-only root filesystem, the numeric non-root
    user, no capabilities, no privilege escalation, and only the given volumes and tmpfs (emptyDir) writable."""
    args = ["run", "--name", name, *RUN_LIMITS, "--read-only", "--read-only-tmpfs=false", "--user", f"{UID}:{UID}"]
    args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--network", network]
    args += ["-d"] if detach else ["--rm"]
    for volume in volumes:
        args += ["-v", volume]
    for path in tmpfs:
        args += ["--tmpfs", f"{path}:rw,nosuid,nodev,size=512m,mode=1777"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    return [*args, image, *command]


@contextlib.contextmanager
def containers() -> Iterator[list[str]]:
    """Names for the containers a test starts; every one of them is removed afterwards, whatever happened."""
    started: list[str] = []
    try:
        yield started
    finally:
        for name in started:
            podman("rm", "--force", "--time", "2", name, check=False, timeout=60)


def container_name(role: str) -> str:
    return f"election-test-{role}-{uuid.uuid4().hex[:8]}"


def owned_directory(path: Path) -> Path:
    """A host directory the container's user may write (a bind mount keeps the host's ownership)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, UID, UID)
    else:
        path.chmod(0o777)
    return path
