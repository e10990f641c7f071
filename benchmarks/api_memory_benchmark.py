"""Peak memory of the serving API under the worst concurrent load its settings allow (run on demand, not in tests).

    python benchmarks/api_memory_benchmark.py [MODEL_STORE] [--seconds 8] [--extra 6] [--unbounded]

Starts ``python -m election_api`` (uvicorn, one worker, the settings of the environment) on the store's champion
and, phase after phase, fires with one thread per connection:

- ``explained``: batches of ELECTION_API_MAX_EXPLAIN_ROWS rows with ``?explain=true`` from
  ELECTION_API_MAX_CONCURRENT_BATCHES + ``--extra`` connections (as many as the cap allows, plus some that wait);
- ``plain``: batches of ELECTION_API_MAX_BATCH_ROWS rows, the same number of connections, then the same rows
  padded with whitespace to ELECTION_API_MAX_BODY_BYTES;
- ``small explained``: explained batches just under the size that takes a batch slot, from 4x as many connections
  (these never wait: they are scored on the event loop one at a time);
- ``mixed``: the explained, padded and small explained loads at once, plus single predictions.

It samples the server's VmRSS every 10 ms and reads its VmHWM (the kernel's peak resident set) after each phase,
and prints both with the answers' status codes. ``--unbounded`` lifts the two bounds (explained batches of
ELECTION_API_MAX_BATCH_ROWS rows, no cap on concurrent batches): the load the bounds exist for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_benchmark import ROOT, api_env, free_port, holdout_rows, start  # noqa: E402  (the sibling script's helpers)

from election_api.capacity import LARGE_BATCH_BYTES  # noqa: E402
from election_api.settings import ApiSettings  # noqa: E402


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024.0
    return values


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, memory_mib(self.pid)["VmRSS"])
            time.sleep(0.01)


def load(url: str, streams: list[tuple[str, bytes, int]], seconds: float) -> tuple[Counter, int]:
    """``streams``: (path, body, connections). Returns the status codes and the answers' largest size in bytes."""
    statuses: Counter = Counter()
    largest = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(path: str, body: bytes) -> None:
        nonlocal largest
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                try:
                    response = http.post(path, content=body, headers={"content-type": "application/json"})
                    status, size = response.status_code, len(response.content)
                except httpx.HTTPError as error:
                    status, size = type(error).__name__, 0
                with lock:
                    statuses[status] += 1
                    largest = max(largest, size)

    threads = [
        threading.Thread(target=client, args=(path, body))
        for path, body, connections in streams
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, largest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "store", nargs="?", default=os.environ.get("ELECTION_MODEL_STORE", str(ROOT / "data/model_store"))
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each phase")
    parser.add_argument("--extra", type=int, default=6, help="connections beyond the cap, which wait for a slot")
    parser.add_argument("--unbounded", action="store_true", help="lift the explain-row limit and the batch cap")
    args = parser.parse_args()
    store = Path(args.store).resolve()
    if not (store / "LATEST").is_file():
        print(f"no champion in {store}: run `make demo` first or pass a model store path.", file=sys.stderr)
        return 2

    port = free_port()
    env = api_env(store, port, ELECTION_API_ACCESS_LOG="false")
    if args.unbounded:
        env |= {"ELECTION_API_MAX_EXPLAIN_ROWS": "10000000", "ELECTION_API_MAX_CONCURRENT_BATCHES": "1000"}
    settings = ApiSettings.from_env(env)
    cap = settings.max_concurrent_batches if not args.unbounded else 2
    connections = cap + args.extra
    explain_rows = min(settings.max_explain_rows, settings.max_batch_rows)

    rows = holdout_rows(store)

    def batch(count: int) -> bytes:
        return json.dumps({"rows": (rows * (count // len(rows) + 1))[:count]}).encode()

    small_rows = max(1, LARGE_BATCH_BYTES // len(json.dumps(rows[0])) - 5)
    while len(batch(small_rows)) > LARGE_BATCH_BYTES:
        small_rows -= 1
    explained, plain, small = batch(explain_rows), batch(settings.max_batch_rows), batch(small_rows)
    single = json.dumps(rows[0]).encode()
    # The same rows padded with whitespace (valid JSON) up to the body limit: the most bytes a request may bring.
    padded = plain + b" " * (settings.max_body_bytes - len(plain))
    # Explanations that list every model column: the largest answers.
    explain_path = f"/predict/batch?explain=true&top={len(settings.data_mode.model_columns)}"
    phases = {
        f"explained: {explain_rows:,} rows, explain=true, all features, {connections} connections": [
            (explain_path, explained, connections)
        ],
        f"plain: {settings.max_batch_rows:,} rows, {connections} connections": [("/predict/batch", plain, connections)],
        f"plain at the body limit: {settings.max_batch_rows:,} rows padded to {len(padded) / 2**20:.0f} MiB, "
        f"{connections} connections": [("/predict/batch", padded, connections)],
        f"small explained: {small_rows} rows ({len(small) // 1024} KiB), explain=true, {4 * connections} connections": [
            (explain_path, small, 4 * connections)
        ],
        "mixed: explained, padded and small explained at once, plus 4 connections of single predictions": [
            (explain_path, explained, connections),
            ("/predict/batch", padded, connections),
            (explain_path, small, 4 * connections),
            ("/predict", single, 4),
        ],
    }
    bounds = (
        "unbounded (explain rows = batch rows, no batch cap)"
        if args.unbounded
        else f"max explain rows {settings.max_explain_rows:,}, max concurrent batches {settings.max_concurrent_batches}"
        f" (wait {settings.batch_wait_seconds:g} s)"
    )
    print(f"Serving {store} (cores: {os.cpu_count()}); max batch rows {settings.max_batch_rows:,}; {bounds}")
    url = f"http://127.0.0.1:{port}"
    process, _ = start([sys.executable, "-m", "election_api"], env, url)
    try:
        at_start = memory_mib(process.pid)
        print(f"\nRSS after start: {at_start['VmRSS']:.0f} MiB\n")
        print(f"{'phase':<92}{'peak RSS':>10}{'VmHWM':>8}  answers")
        for name, streams in phases.items():
            sampler = Sampler(process.pid)
            sampler.start()
            statuses, largest = load(url, streams, args.seconds)
            sampler.stop.set()
            sampler.join()
            hwm = memory_mib(process.pid)["VmHWM"]
            answers = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items(), key=str))
            print(f"{name:<92}{sampler.peak:>7.0f} MiB{hwm:>5.0f} MiB  {answers}; largest {largest / 1e6:.1f} MB")
        hwm = memory_mib(process.pid)["VmHWM"]
    finally:
        process.terminate()
        process.wait(timeout=15)
    margin = 384 - hwm
    print(f"\nPeak resident set of the server (VmHWM): {hwm:.0f} MiB; staging limit 384 MiB, margin {margin:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
