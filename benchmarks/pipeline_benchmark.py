"""Time the main job the way `make demo` runs it (a fresh process, the CLI), and print the time per asset.

    .venv/bin/python benchmarks/pipeline_benchmark.py            # default sizes: 20,000 + 5,000 regions
    .venv/bin/python benchmarks/pipeline_benchmark.py --scale 10  # 10x the rows

Each run uses a throw-away data directory, MLflow store and Dagster instance, so the figures are for a first run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRAINING_ROWS, DEFAULT_CURRENT_ROWS = 20_000, 5_000


def run_job(workdir: Path, scale: float) -> tuple[float, Path]:
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "instance" / "dagster.yaml").read_text())
    config = workdir / "run_config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ops": {
                    "raw_regions": {"config": {"n_regions": int(DEFAULT_TRAINING_ROWS * scale)}},
                    "current_regions": {"config": {"n_regions": int(DEFAULT_CURRENT_ROWS * scale)}},
                }
            }
        )
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "ELECTION_DATA_DIR": str(workdir / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "job",
        "execute",
        "-m",
        "election_assets.definitions",
        "-a",
        "defs",
        "-j",
        "election_pipeline",
        "-c",
        str(config),
    ]
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, home


def step_durations(home: Path) -> tuple[dict[str, float], float]:
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    (run,) = instance.get_runs(limit=1)
    starts, durations = {}, defaultdict(float)
    first = last = None
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is None:
            continue
        first = record.timestamp if first is None else first
        last = record.timestamp
        if event.event_type_value == "STEP_START":
            starts[record.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            durations[record.step_key] += record.timestamp - starts[record.step_key]
    return dict(durations), (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default row counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wall, home = run_job(Path(scratch), args.scale)
        durations, in_run = step_durations(home)
    rows = int(DEFAULT_TRAINING_ROWS * args.scale), int(DEFAULT_CURRENT_ROWS * args.scale)
    print(f"main job, {rows[0]:,} training + {rows[1]:,} current regions (scale {args.scale:g})")
    print(f"{'step':<58}{'seconds':>9}")
    for step, seconds in sorted(durations.items(), key=lambda item: -item[1]):
        print(f"{step:<58}{seconds:>9.2f}")
    print(f"{'steps inside the run (first to last event)':<58}{in_run:>9.2f}")
    print(f"{'wall time of the CLI command (process start to exit)':<58}{wall:>9.2f}")


if __name__ == "__main__":
    main()
