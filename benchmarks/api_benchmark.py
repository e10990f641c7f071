"""Benchmark the serving API against a naive FastAPI + pandas baseline serving the same champion (run on demand,
not in tests).

    python benchmarks/api_benchmark.py [MODEL_STORE] [--duration 15] [--connections 16]

Needs ``wrk`` (``apt-get install -y wrk``). Measures, for each server (one process each, on 127.0.0.1):
POST /predict at concurrency 16 (requests/s, p50, p99), POST /predict/batch with 1,000 rows (p50 at
concurrency 1), cold start (process start to the first 200 on /ready) and RSS after start and after the load
(VmRSS). The baseline loads the champion's own scikit-learn or XGBoost estimator from MLflow (the store the
pipeline settings name) and calls ``predict_proba`` on a pandas frame per request.
Then profiles where the time of one /predict goes inside our process.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import pstats
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: import the checkout's packages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def holdout_rows(store: Path) -> list[dict]:
    from election_assets.core.model_store import HOLDOUT_FILE, ModelStore
    from election_assets.core.schema import FIELDS_BY_NAME, INPUT_FIELD_NAMES

    models = ModelStore(store)
    with open(models.version_dir(models.latest_version()) / HOLDOUT_FILE, newline="") as handle:
        records = list(csv.DictReader(handle))
    return [
        {n: (int(r[n]) if FIELDS_BY_NAME[n].kind == "int" else float(r[n])) for n in INPUT_FIELD_NAMES} for r in records
    ]


def api_env(store: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of ``python -m election_api`` serving ``store`` on ``port``, quiet, with ``settings``."""
    return {**os.environ, "ELECTION_MODEL_STORE": str(store), "PORT": str(port), "LOG_LEVEL": "WARNING", **settings}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def start(command: list[str], env: dict[str, str], url: str) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited with {process.returncode}")
        if time.perf_counter() - started > 120:
            raise RuntimeError(f"{command} did not become ready")
        time.sleep(0.005)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, body: bytes, connections: int, duration: int, workdir: Path) -> dict[str, float]:
    body_file = workdir / f"body-{len(body)}.json"
    body_file.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
    )
    threads = min(2, connections)
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": percentiles["50"],
        "p99_ms": percentiles["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }


def export_champion_for_baseline(store: Path, workdir: Path) -> Path:
    """The served champion's own fitted estimator, read back from MLflow (``source_run.mlflow_model_uri`` in its
    manifest), saved where the baseline server loads it: the two servers answer with the same model."""
    import pickle

    import mlflow

    from election_assets.core.model_store import ModelStore
    from election_assets.settings import PipelineSettings

    models = ModelStore(store)
    version = models.latest_version()
    manifest = models.read_manifest(version)
    uri = manifest.source_run.mlflow_model_uri
    mlflow.set_tracking_uri(PipelineSettings.from_env().mlflow_tracking_uri)
    if manifest.model_name == "xgboost":
        path = workdir / "baseline.json"
        mlflow.xgboost.load_model(uri).save_model(path)
    else:
        path = workdir / "baseline.pkl"  # written and read by this benchmark run only
        path.write_bytes(pickle.dumps(mlflow.sklearn.load_model(uri)))
    print(f"  baseline model: champion {version} ({manifest.model_name}) from {uri}", flush=True)
    return path


def measure(name, command, env, url, single, batch, args, workdir) -> dict:
    process, cold = start(command, env, url)
    try:
        loaded_rss = rss_mb(process.pid)
        httpx.post(f"{url}/predict", content=single, headers={"content-type": "application/json"}).raise_for_status()
        print(
            f"  {name}: cold start {cold:.2f}s, RSS {loaded_rss:.0f} MB; wrk /predict c={args.connections} ...",
            flush=True,
        )
        single_stats = wrk(f"{url}/predict", single, args.connections, args.duration, workdir)
        print(f"  {name}: wrk /predict/batch (1,000 rows) c=1 ...", flush=True)
        batch_stats = wrk(f"{url}/predict/batch", batch, 1, args.batch_duration, workdir)
        final_rss = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)
    return {"cold": cold, "rss": loaded_rss, "rss_end": final_rss, "single": single_stats, "batch": batch_stats}


def profile_request_path(store: Path, single: bytes) -> None:
    """Where one /predict spends its time inside the process (without HTTP): cProfile + per-stage timings."""
    import msgspec
    import numpy as np

    from election_api.codec import RequestCodec
    from election_api.metrics import ApiMetrics
    from election_api.routes.predictions import render
    from election_api.serving import ModelManager
    from election_api.settings import ApiSettings

    settings = ApiSettings(model_store_dir=store, reports_dir=store / "none")
    manager = ModelManager(settings, ApiMetrics())
    manager.check()
    served = manager.current
    decode_single = RequestCodec(settings.data_mode).decode_single
    encoder = msgspec.json.Encoder()
    n = 20_000
    stages = {
        "decode + validate (msgspec)": 0.0,
        "engineer_features": 0.0,
        "predict_proba_a": 0.0,
        "build response structs": 0.0,
        "encode (msgspec)": 0.0,
    }
    for _ in range(n):
        t0 = time.perf_counter()
        x = decode_single(single)
        t1 = time.perf_counter()
        from election_assets.core.features import engineer_features

        features = engineer_features(x)
        t2 = time.perf_counter()
        p = served.model.predict_proba_a(features)
        t3 = time.perf_counter()
        prediction = render(served, features, p, False, 5)[0]
        np.maximum(p, 1.0 - p)
        t4 = time.perf_counter()
        encoder.encode(prediction)
        t5 = time.perf_counter()
        for key, elapsed in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            stages[key] += elapsed
    total = sum(stages.values())
    print(f"\nProfile of the in-process request path (mean of {n:,} single-row predictions, no HTTP):")
    for key, elapsed in stages.items():
        print(f"  {key:<30} {elapsed / n * 1e6:8.1f} us  {elapsed / total:6.1%}")
    print(f"  {'total model path':<30} {total / n * 1e6:8.1f} us")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5000):
        x = decode_single(single)
        features, p = served.predict(x)
        encoder.encode(render(served, features, p, False, 5)[0])
    profiler.disable()
    print("\ncProfile, top 12 by internal time (5,000 predictions):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "store", nargs="?", default=os.environ.get("ELECTION_MODEL_STORE", str(ROOT / "data/model_store"))
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--batch-duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--profile-only", action="store_true", help="only the in-process profile, no servers")
    args = parser.parse_args()
    if args.profile_only:
        store = Path(args.store).resolve()
        profile_request_path(store, json.dumps(holdout_rows(store)[0]).encode())
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk` (or `brew install wrk`) and retry.", file=sys.stderr)
        return 2
    store = Path(args.store).resolve()
    if not (store / "LATEST").is_file():
        print(f"no champion in {store}: run `make demo` first or pass a model store path.", file=sys.stderr)
        return 2

    rows = holdout_rows(store)
    single = json.dumps(rows[0]).encode()
    batch = json.dumps({"rows": (rows * (1000 // len(rows) + 1))[:1000]}).encode()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        env = api_env(store, port, ELECTION_API_RELOAD_INTERVAL_SECONDS="2")
        print(f"Serving {store} (cores: {os.cpu_count()})")
        results["election_api"] = measure(
            "election_api (Litestar)",
            [sys.executable, "-m", "election_api"],
            env,
            f"http://127.0.0.1:{port}",
            single,
            batch,
            args,
            workdir,
        )
        if not args.skip_baseline:
            model_path = export_champion_for_baseline(store, workdir)
            port = free_port()
            command = [sys.executable, str(ROOT / "benchmarks/api_baseline_fastapi.py"), str(model_path), str(port)]
            results["baseline"] = measure(
                "baseline (FastAPI+pandas+XGBoost)",
                command,
                dict(os.environ),
                f"http://127.0.0.1:{port}",
                single,
                batch,
                args,
                workdir,
            )

    ours, base = results["election_api"], results.get("baseline")
    print(f"\n{'metric':<38}{'election_api':>16}{'baseline':>16}   target")

    def row(label, key, fmt, target="", met=None):
        value = key(ours)
        other = format(key(base), fmt) if base else "-"
        verdict = "" if met is None else ("  PASS" if met(value) else "  MISSED")
        print(f"{label:<38}{format(value, fmt):>16}{other:>16}   {target}{verdict}")

    ratio = ours["single"]["rps"] / base["single"]["rps"] if base else float("nan")
    row(
        f"POST /predict req/s (c={args.connections})",
        lambda r: r["single"]["rps"],
        ",.0f",
        f">= 10x baseline (ratio {ratio:.1f}x)",
        (lambda _: ratio >= 10.0) if base else None,
    )
    row("POST /predict p50 ms", lambda r: r["single"]["p50_ms"], ".2f")
    row("POST /predict p99 ms", lambda r: r["single"]["p99_ms"], ".2f", "< 10 ms", lambda v: v < 10.0)
    row("POST /predict non-2xx", lambda r: r["single"]["non_2xx"], "d", "0", lambda v: v == 0)
    row("POST /predict/batch 1,000 rows p50 ms", lambda r: r["batch"]["p50_ms"], ".2f", "< 25 ms", lambda v: v < 25.0)
    row("POST /predict/batch 1,000 rows p99 ms", lambda r: r["batch"]["p99_ms"], ".2f")
    row("cold start s (spawn -> 200 /ready)", lambda r: r["cold"], ".2f", "< 2 s", lambda v: v < 2.0)
    row("RSS after start MB", lambda r: r["rss"], ".0f")
    row("RSS after the load MB", lambda r: r["rss_end"], ".0f", "< 250 MB", lambda v: v < 250.0)
    baseline_errors = base["single"]["socket_errors"] if base else "-"
    print(f"socket errors: ours {ours['single']['socket_errors']}, baseline {baseline_errors}")
    profile_request_path(store, single)
    return 0


if __name__ == "__main__":
    sys.exit(main())
