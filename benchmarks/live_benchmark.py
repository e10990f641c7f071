"""Benchmark election night end to end: from publishing county results to NATS JetStream to the live updater's
updated estimate in the key-value bucket (run on demand, not in tests).

    python benchmarks/live_benchmark.py [--year 2020] [--rounds 3] [--rate 500] [--latency-messages 10000]
    python benchmarks/live_benchmark.py --profile-updater    # where a batch's time goes (cProfile in the updater)

Needs a NATS server with JetStream (``ELECTION_NATS_URL``, nats://127.0.0.1:4222 by default). The targets (issue
#16): at least 5,000 county messages per second sustained, and a p99 latency per message under 50 ms at 500 messages
per second.

1. Builds the year's election-night prior in pure Python (the walk-forward model on earlier elections, as
   ``make live-demo`` does through Dagster) into a temporary ``ELECTION_DATA_DIR``.
2. Each phase uses its own stream, subject prefix and bucket (``bench_<random>``, deleted at the end: nothing else on
   the server is touched) and starts the updater as its own process, ``python -m election_assets.live.updater
   --year Y``, the way it is deployed; it is following once its durable consumer exists and the bucket holds its
   first ``national`` record. This benchmark is the publisher, in this process, beside it on the same machine, and
   watches the bucket's ``national`` key (``kv.watch``, as the API does).
3. **Throughput** (``--rounds`` rounds, a fresh stream and updater each): the year's whole replay (~10,900 messages)
   published as fast as possible (``publish_async``, acks in the background); the time from the first publish to
   the arrival of a ``national`` record whose ``last_sequence`` is the last message's stream sequence. Also the
   updater's own rate while busy (messages applied between its first and last update of the round over that time),
   its CPU time per message and the batches it wrote.
4. **Latency** at ``--rate`` messages per second (the first ``--latency-messages`` messages of the replay): each
   message's time just before its publish and its stream sequence (from the ack); a ``national`` update with
   ``last_sequence = L`` arriving at time t gives every message with sequence <= L not yet covered the latency
   t - its publish time. Reports p50, p90, p99 and the maximum, and the updater's own histogram (from a report's
   arrival in JetStream to the bucket write) read from its /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: import the checkout's packages

from election_assets.core.live import NATIONAL_KEY, LiveSettings  # noqa: E402
from election_assets.live import stream  # noqa: E402
from election_assets.live.updater import consumer_name, reset_night  # noqa: E402

THROUGHPUT_TARGET = 5_000.0  # messages per second, sustained
LATENCY_TARGET_MS = 50.0  # p99 at 500 messages per second
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc), NaN if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def nats_server_pid() -> int | None:
    """The nats-server process on this machine, if exactly one (only read, for its CPU time)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "nats-server":
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids[0] if len(pids) == 1 else None


def build_prior(year: int, data_dir: Path) -> Path:
    """The year's election-night prior (walk-forward model trained before ``year``) at ``<data_dir>/live``."""
    from election_assets.core.paths import StorePaths
    from election_assets.live.prior import build_prior as build
    from election_assets.real.backtest import training_rows
    from election_assets.real.evaluation import electoral_votes
    from election_assets.real.features import ElectionInputs

    inputs = ElectionInputs.read()
    features = inputs.features_by_year()
    prior = build(
        training_rows(features, before=year),
        features[year],
        electoral_votes(year),
        f"walk-forward {year}",
        inputs.polls,
        inputs.state_returns,
    )
    path = StorePaths.from_env({"ELECTION_DATA_DIR": str(data_dir)}).live_prior(year)
    path.parent.mkdir(parents=True, exist_ok=True)
    prior.write(path)
    return path


def bench_settings(nats_url: str) -> LiveSettings:
    """Names no one else uses: the benchmark deletes them when done."""
    tag = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    return LiveSettings(
        nats_url=nats_url, results_stream=tag.upper(), subject_prefix=f"{tag}_results", live_bucket=f"{tag}_live"
    )


@dataclass
class Phase:
    name: str
    messages: int
    speed: float
    publish_seconds: float = 0.0  # first publish to the last ack
    end_to_end_seconds: float = 0.0  # first publish to the bucket holding the last message
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    uncovered: int = 0
    updates: list[tuple[float, int, int]] = field(default_factory=list)  # (arrival, last_sequence, applied)
    updater_busy_rate: float = float("nan")
    updater_cpu: float = float("nan")
    publisher_cpu: float = float("nan")
    nats_cpu: float = float("nan")
    startup_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    stopped_by: str = ""

    @property
    def throughput(self) -> float:
        return self.messages / self.end_to_end_seconds

    @property
    def batches(self) -> int:
        return len(self.updates)


class Updater:
    """``python -m election_assets.live.updater --year Y`` as its own process, on the benchmark's names."""

    def __init__(self, settings: LiveSettings, data_dir: Path, year: int, log_path: Path, profile: Path | None = None):
        self.metrics_port = free_port()
        self.profile = profile
        self.stopped_by = ""
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "ELECTION_DATA_DIR": str(data_dir),
            "ELECTION_NATS_URL": settings.nats_url,
            "ELECTION_RESULTS_STREAM": settings.results_stream,
            "ELECTION_RESULTS_SUBJECT_PREFIX": settings.subject_prefix,
            "ELECTION_LIVE_BUCKET": settings.live_bucket,
            "ELECTION_LIVE_METRICS_PORT": str(self.metrics_port),
        }
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        profiler = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
        self.process = subprocess.Popen(
            [sys.executable, *profiler, "-m", "election_assets.live.updater", "--year", str(year)],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the updater exited with {self.process.returncode}:\n{tail}")

    def metrics(self) -> dict[str, float]:
        """The updater's own figures from /metrics: applied, latency histogram count, sum and buckets."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("election_live_") and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stop(self) -> None:
        """SIGTERM, as Kubernetes stops it; SIGKILL if it has not exited after a few seconds (45 s when profiled:
        cProfile writes its file at exit). The stream and bucket are deleted next, so nothing is lost."""
        if self.process.poll() is None:
            started = time.perf_counter()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45 if self.profile else 5)
                self.stopped_by = f"SIGTERM, exited after {time.perf_counter() - started:.1f} s"
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.stopped_by = f"SIGTERM not enough after {time.perf_counter() - started:.0f} s: SIGKILL"
        self._log.close()


async def wait_following(js: Any, settings: LiveSettings, year: int, updater: Updater, timeout: float = 120.0):
    """Until the updater's durable consumer exists and the bucket holds its first ``national`` record."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        updater.check_alive()
        try:
            await js.consumer_info(settings.results_stream, consumer_name(year))
            kv = await js.key_value(settings.live_bucket)
            await kv.get(NATIONAL_KEY)
            return kv
        except Exception:  # not there yet: the stream, consumer, bucket or key
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the updater was not following after {timeout:.0f} s; see {updater.log_path}")


async def watch_national(kv: Any, updates: list[tuple[float, int, int]], arrived: asyncio.Event) -> None:
    """Every ``national`` record the bucket gets: its arrival here, its last_sequence and messages applied."""
    import nats.errors

    watcher = await kv.watch(NATIONAL_KEY)
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=3600)
            except nats.errors.TimeoutError:
                continue
            now = time.perf_counter()
            if entry is None or not entry.value:
                continue
            national = json.loads(entry.value)
            updates.append((now, int(national["last_sequence"]), int(national["messages_applied"])))
            arrived.set()
    finally:
        await watcher.stop()


async def run_phase(
    name: str,
    nats_url: str,
    year: int,
    data_dir: Path,
    messages: list[dict],
    speed: float,
    workdir: Path,
    profile: Path | None = None,
) -> Phase:
    settings = bench_settings(nats_url)
    phase = Phase(name=name, messages=len(messages), speed=speed)
    nc = await stream.connect(settings.nats_url)
    js = nc.jetstream()
    updater = None
    watching = None
    nats_pid = nats_server_pid()
    try:
        await stream.ensure_stream(js, settings)
        started = time.perf_counter()
        updater = Updater(settings, data_dir, year, workdir / f"updater-{settings.results_stream}.log", profile)
        kv = await wait_following(js, settings, year, updater)
        phase.startup_seconds = time.perf_counter() - started
        updates: list[tuple[float, int, int]] = []
        arrived = asyncio.Event()
        watching = asyncio.create_task(watch_national(kv, updates, arrived))
        await asyncio.sleep(0.5)  # the watch is set up and has seen the updater's first record
        baseline = len(updates)
        cpu_before = (cpu_seconds(updater.process.pid), own_cpu_seconds(), cpu_seconds(nats_pid) if nats_pid else 0)

        sent: list[float] = []
        published = await stream.publish_messages(js, messages, settings, speed=speed, sent_at=sent)
        phase.publish_seconds = time.perf_counter() - sent[0]
        if published.duplicates:
            raise RuntimeError("JetStream answered duplicate: the benchmark's stream was not fresh")
        sequences = np.array(published.sequences)
        last = int(sequences.max())
        deadline = time.perf_counter() + 120
        while not (updates and updates[-1][1] >= last):
            updater.check_alive()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the bucket never reached sequence {last}; last update {updates[-1:]}")
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), timeout=1.0)
        cpu_after = (cpu_seconds(updater.process.pid), own_cpu_seconds(), cpu_seconds(nats_pid) if nats_pid else 0)
        phase.updater_cpu, phase.publisher_cpu, phase.nats_cpu = (
            a - b for a, b in zip(cpu_after, cpu_before, strict=True)
        )
        if not nats_pid:
            phase.nats_cpu = float("nan")
        phase.updates = updates[baseline:]
        done_at = next(t for t, sequence, _ in phase.updates if sequence >= last)
        phase.end_to_end_seconds = done_at - sent[0]

        # Each message's latency: the arrival of the first update whose last_sequence covers it.
        arrivals = np.array([t for t, _, _ in phase.updates])
        covered = np.maximum.accumulate(np.array([sequence for _, sequence, _ in phase.updates]))
        first_covering = np.searchsorted(covered, sequences, side="left")
        ok = first_covering < len(arrivals)
        phase.uncovered = int((~ok).sum())
        phase.latencies_ms = (arrivals[first_covering[ok]] - np.array(sent)[ok]) * 1000.0

        busy = [(t, applied) for t, _, applied in phase.updates]
        if len(busy) >= 2 and busy[-1][0] > busy[0][0]:
            phase.updater_busy_rate = (busy[-1][1] - busy[0][1]) / (busy[-1][0] - busy[0][0])
        phase.metrics = updater.metrics()
    finally:
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        if updater is not None:
            updater.stop()
            phase.stopped_by = updater.stopped_by
        await reset_night(js, settings)  # delete the benchmark's stream and bucket
        await nc.drain()
    return phase


def describe_profile(path: Path) -> None:
    """Where the profiled updater's time went: the main steps of a batch per call, then the top functions."""
    import pstats

    stats = pstats.Stats(str(path))
    wanted = {
        ("updater.py", "_apply_batch"): "a batch, all of it (_apply_batch)",
        ("updater.py", "_publish"): "  the bucket write (_publish: snapshot, puts, update)",
        ("estimate.py", "snapshot"): "    LiveEstimate.snapshot",
        ("estimate.py", "posterior"): "      posterior",
        ("estimate.py", "electoral_votes"): "      electoral_votes",
        ("estimate.py", "parse_message"): "  parse_message (per message)",
        ("estimate.py", "apply"): "  LiveEstimate.apply (per message)",
        ("kv.py", "put"): "  KeyValue.put (per key written)",
        ("client.py", "fetch"): "the pull (PullSubscription.fetch, waits included)",
    }
    print(f"\n  {'step':<56}{'calls':>8}{'ms per call':>13}{'total s':>9}")
    for (filename, name), label in wanted.items():
        for (file, _, function), (_, calls, _, cumulative, _) in stats.stats.items():
            from_nats = "/nats/" in file
            if function == name and file.endswith(filename) and from_nats == (filename in ("kv.py", "client.py")):
                print(f"  {label:<56}{calls:>8,}{cumulative / calls * 1000:>13.3f}{cumulative:>9.2f}")
                break
    print("\n  cProfile, top 15 functions by own time:")
    stats.sort_stats("tottime").print_stats(15)


def latency_bucket_line(metrics: dict[str, float]) -> str:
    """The updater's own latency histogram as 'share of messages <= bound' for a few bounds."""
    count = metrics.get("election_live_update_latency_seconds_count", 0.0)
    if not count:
        return "no observations"
    parts = []
    for bound in ("0.01", "0.025", "0.05", "0.1"):
        key = f'election_live_update_latency_seconds_bucket{{le="{bound}"}}'
        if key in metrics:
            parts.append(f"<= {float(bound) * 1000:g} ms: {metrics[key] / count:.1%}")
    mean = metrics.get("election_live_update_latency_seconds_sum", 0.0) / count * 1000.0
    return f"mean {mean:.1f} ms; " + ", ".join(parts)


def describe_throughput(phase: Phase) -> None:
    per_batch = phase.messages / max(phase.batches, 1)
    print(
        f"  {phase.name}: {phase.messages:,} messages, published in {phase.publish_seconds:.2f} s "
        f"({phase.messages / phase.publish_seconds:,.0f}/s); bucket at the last one after "
        f"{phase.end_to_end_seconds:.2f} s -> {phase.throughput:,.0f} messages/s end to end; updater while busy "
        f"{phase.updater_busy_rate:,.0f}/s, {phase.batches} batches ({per_batch:.0f} messages each), CPU "
        f"{phase.updater_cpu:.2f} s updater ({phase.updater_cpu / phase.messages * 1e6:.0f} us/message), "
        f"{phase.publisher_cpu:.2f} s publisher, {phase.nats_cpu:.2f} s nats-server; updater start "
        f"{phase.startup_seconds:.1f} s",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=int, default=2020, help="the replayed election (2008, 2012, 2016, 2020)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (a fresh stream and updater each)")
    parser.add_argument("--rate", type=float, default=500.0, help="messages per second of the latency phase")
    parser.add_argument("--latency-messages", type=int, default=10_000, help="messages of the latency phase")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--profile-updater",
        action="store_true",
        help="only the latency phase, the updater under cProfile, and where its time goes (cProfile slows it: no "
        "figures are judged then)",
    )
    args = parser.parse_args()

    from election_assets.live.replay import load_county_returns, replay_messages

    nats_url = LiveSettings.from_env().nats_url
    try:
        asyncio.run(_check_nats(nats_url))
    except stream.StreamUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"Machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), Python "
        f"{platform.python_version()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; NATS "
        f"{nats_url}",
        flush=True,
    )
    messages = replay_messages(load_county_returns(), args.year)
    throughput: list[Phase] = []
    latency: Phase | None = None
    with tempfile.TemporaryDirectory(prefix="live-benchmark-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        build_prior(args.year, workdir)
        print(f"Prior of {args.year} built in {time.perf_counter() - started:.1f} s; {len(messages):,} messages "
              "in its replay", flush=True)  # fmt: skip
        if args.profile_updater:
            count = min(args.latency_messages, len(messages))
            print(f"\nProfile: the updater under cProfile, the first {count:,} messages at {args.rate:g}/s", flush=True)
            profile = workdir / "updater.prof"
            phase = asyncio.run(
                run_phase("profile", nats_url, args.year, workdir, messages[:count], args.rate, workdir, profile)
            )
            p50 = np.percentile(phase.latencies_ms, 50)
            print(f"  {phase.batches} batches ({count / max(phase.batches, 1):.1f} messages each), updater CPU "
                  f"{phase.updater_cpu:.1f} s in {phase.publish_seconds:.1f} s; p50 {p50:.1f} ms (inflated by "
                  f"cProfile); stopped: {phase.stopped_by}")  # fmt: skip
            if profile.exists():
                describe_profile(profile)
            else:
                print("  the updater wrote no profile (it did not exit by itself after SIGTERM)")
            shutil.rmtree(workdir, ignore_errors=True)
            return 0
        try:
            if not args.skip_throughput:
                print(f"\nThroughput: the whole replay as fast as possible, {args.rounds} rounds", flush=True)
                for number in range(1, args.rounds + 1):
                    phase = asyncio.run(
                        run_phase(f"round {number}", nats_url, args.year, workdir, messages, 0.0, workdir)
                    )
                    describe_throughput(phase)
                    throughput.append(phase)
            if not args.skip_latency:
                count = min(args.latency_messages, len(messages))
                print(f"\nLatency: the first {count:,} messages at {args.rate:g}/s "
                      f"({count / args.rate:.0f} s)", flush=True)  # fmt: skip
                latency = asyncio.run(
                    run_phase("latency", nats_url, args.year, workdir, messages[:count], args.rate, workdir)
                )
                print(
                    f"  published in {latency.publish_seconds:.1f} s ({count / latency.publish_seconds:,.0f}/s); "
                    f"{latency.batches} batches ({count / max(latency.batches, 1):.1f} messages each); CPU "
                    f"{latency.updater_cpu:.1f} s updater ({latency.updater_cpu / latency.publish_seconds:.0%} "
                    f"of a core), {latency.publisher_cpu:.1f} s publisher, {latency.nats_cpu:.1f} s nats-server",
                    flush=True,
                )
                print(f"  updater's own histogram (JetStream arrival to bucket write): "
                      f"{latency_bucket_line(latency.metrics)}", flush=True)  # fmt: skip
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'figure':<58}{'value':>12}   target")
    missed = []

    def row(label: str, value: float, fmt: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("  PASS" if met else "  MISSED")
        if met is False:
            missed.append(label)
        print(f"{label:<58}{format(value, fmt):>12}   {target}{verdict}")

    if throughput:
        total_messages = sum(p.messages for p in throughput)
        total_seconds = sum(p.end_to_end_seconds for p in throughput)
        for phase in throughput:
            row(f"throughput {phase.name}, messages/s end to end", phase.throughput, ",.0f")
        overall = total_messages / total_seconds
        row(
            f"throughput, {len(throughput)} rounds ({total_messages:,} messages in {total_seconds:.1f} s)",
            overall,
            ",.0f",
            f">= {THROUGHPUT_TARGET:,.0f}/s",
            overall >= THROUGHPUT_TARGET,
        )
        row("throughput, worst round", min(p.throughput for p in throughput), ",.0f")
        row("updater's rate while busy (mean of rounds), messages/s",
            float(np.mean([p.updater_busy_rate for p in throughput])), ",.0f")  # fmt: skip
        row("updater CPU per message (mean of rounds), us",
            float(np.mean([p.updater_cpu / p.messages * 1e6 for p in throughput])), ".0f")  # fmt: skip
    if latency is not None:
        lat = latency.latencies_ms
        label = f"at {latency.speed:g}/s"
        row(f"latency {label}: messages measured", len(lat), ",d")
        if latency.uncovered:
            row(f"latency {label}: messages never seen in the bucket", latency.uncovered, ",d", "0", False)
        for q in (50, 90, 99):
            met = None if q != 99 else float(np.percentile(lat, 99)) < LATENCY_TARGET_MS
            target = "" if q != 99 else f"< {LATENCY_TARGET_MS:g} ms"
            row(f"latency {label}: p{q} ms", float(np.percentile(lat, q)), ".1f", target, met)
        row(f"latency {label}: max ms", float(lat.max()), ".1f")
        row(f"latency {label}: mean ms", float(lat.mean()), ".1f")
    phases = [*throughput, *([latency] if latency else [])]
    for phase in phases:
        applied = phase.metrics.get("election_live_messages_applied_total")
        if applied != phase.messages:
            print(f"warning: {phase.name}: the updater applied {applied} of {phase.messages:,} messages")
    stops = sorted({phase.stopped_by for phase in phases})
    print(f"\nUpdater stops: {'; '.join(stops)}")
    if missed:
        print(f"\nTARGET MISSED: {'; '.join(missed)}")
    else:
        print("\nAll targets met.")
    return 0


async def _check_nats(url: str) -> None:
    client = await stream.connect(url)
    await client.close()


if __name__ == "__main__":
    sys.exit(main())
