"""Benchmark responder: intake, large groups, alert to first action, playbook throughput, memory,
scaling and the GitHub calls of one incident followed to completion, side by side in one run.
See bench/README.md.

    python bench/run.py            # full run (about 3.5 minutes)
    python bench/run.py --quick    # smoke run (about a minute), results in bench/results/quick/

Everything runs on this machine against private processes: a redis-server on a free port
(persistence as in docker-compose.yml: appendonly, appendfsync always), the in-repo GitHub fake
(tests/fakes/github.py, in this process), `responder serve`, `responder worker`s, a bare
aiohttp server (bench/bare_server.py), the naive RQ-in-the-handler server (bench/naive_server.py)
and two plain RQ SimpleWorkers with a no-op job (bench/noop.py), the references of the intake and
worker targets, as subprocesses. Prints a table; writes
results.json and PNG plots to bench/results/ and the table into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "bench-webhook-token-123"
QUEUE = "responder-bench"
MANIFEST = ROOT / "responder" / "samples" / "model-manifest.json"
DRIFT_SAMPLE = ROOT / "responder" / "samples" / "drift-two-segments-firing.json"
MB = 1024  # kB per MiB (VmRSS is in kB)


# --------------------------------------------------------------------------- set-up


def ensure_tools(install: bool, parts: list[str] | None = None) -> None:
    """wrk and valgrind from Debian and matplotlib from PyPI, installed when missing (like scripts/test
    does). Without valgrind (and --no-install) only the instruction counts are skipped. ``parts``
    (``--only``): only what those need (wrk for the intake rounds and instruction counts, valgrind
    for the latter, matplotlib for the plots of a full run)."""
    wanted = {"wrk": not parts or bool({"intake", "replicas", "instructions"} & set(parts)),
              "valgrind": not parts or "instructions" in parts}
    missing = [tool for tool, needed in wanted.items() if needed and shutil.which(tool) is None]
    if "wrk" in missing and not install:
        sys.exit("bench: wrk is not installed: apt-get install -y wrk (or drop --no-install)")
    if missing and install:
        print(f"bench: installing {', '.join(missing)} (apt-get)", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    if shutil.which("redis-server") is None:
        sys.exit("bench: redis-server is not installed: apt-get install -y redis-server (scripts/test does)")
    if parts:
        return  # a partial run draws no plots
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not install:
            sys.exit("bench: matplotlib is not installed: pip install matplotlib (or drop --no-install)")
        print("bench: installing matplotlib (pip)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "matplotlib"],
                       check=True)


def machine_info(redis_version: str, wrk_version: str) -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "redis": redis_version,
        "wrk": wrk_version,
        "packages": _versions("aiohttp", "redis", "rq", "PyGithub", "pydantic"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "responder")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "?"
    return found


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from bench import load, procs
        from bench.fake import BenchGitHub

        self.args = args
        self.quick: bool = args.quick
        self.load = load
        self.procs = procs
        self.workdir = Path(tempfile.mkdtemp(prefix="responder-bench-"))
        self.redis = procs.RedisServer(self.workdir, fsync=args.redis_fsync)
        self.github = BenchGitHub().start()
        self.manifest = json.loads(MANIFEST.read_text())
        self.github.set_manifest(self.manifest)
        self.env = procs.responder_env(self.redis.url, self.github, TOKEN, QUEUE)
        self.receiver, self.receiver_url = procs.start_receiver(self.env, self.workdir)
        self.client = load.Client(self.receiver_url, TOKEN)
        self.results: dict[str, Any] = {}

    # ----------------------------------------------------------------- helpers

    def post(self, payload: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        """POST to the receiver; returns the decisions, the send time (perf_counter) and the ack seconds."""
        status, body, start, seconds = self.client.post(payload)
        if status != 202:
            raise RuntimeError(f"receiver answered {status}: {body[:300]!r}")
        return json.loads(body), start, seconds

    def reset_state(self) -> None:
        self.redis.flush()
        self.github.reset()
        self.github.set_manifest(self.manifest)

    def receiver_memory(self) -> dict[str, Any]:
        status = self.procs.proc_status(self.receiver.pid)
        return {"rss_mib": round(status.get("VmRSS", 0) / MB, 1), "peak_rss_mib": round(status.get("VmHWM", 0) / MB, 1),
                "pss_mib": round(status.get("Pss", 0) / MB, 1)}

    def worker_memory(self, workers: list[Any]) -> list[dict[str, Any]]:
        found = []
        for proc in workers:
            main = self.procs.proc_status(proc.pid)
            tree = self.procs.process_tree(proc.pid)
            others = [(pid, self.procs.proc_status(pid), self.procs.cmdline(pid)) for pid in tree[1:]]
            found.append({
                "pid": proc.pid,
                "rss_mib": round(main.get("VmRSS", 0) / MB, 1),
                "peak_rss_mib": round(main.get("VmHWM", 0) / MB, 1),
                "pss_mib": round(main.get("Pss", 0) / MB, 1),
                "children": [{"pid": pid, "rss_mib": round(s.get("VmRSS", 0) / MB, 1),
                              "pss_mib": round(s.get("Pss", 0) / MB, 1), "cmd": cmd[:80]} for pid, s, cmd in others],
                "tree_pss_mib": round((main.get("Pss", 0) + sum(s.get("Pss", 0) for _, s, _ in others)) / MB, 1),
            })
        return found

    def start_workers(self, count: int, env: dict[str, str] | None = None, *,
                      reference: bool = False) -> tuple[list[Any], float]:
        """Start ``count`` workers (with ``env``, default the bench's), or with ``reference`` plain RQ
        SimpleWorkers (bench/noop.py); returns them and the time (epoch) when all had registered with RQ."""
        from rq import Queue, Worker

        if reference:
            workers = self.procs.start_rq_workers(self.redis.url, QUEUE, self.workdir, count)
        else:
            workers = self.procs.start_workers(env or self.env, self.workdir, count)
        queue = Queue(QUEUE, connection=self.redis.client)
        self.procs.wait_until(lambda: Worker.count(connection=self.redis.client, queue=queue) >= count,
                              f"{count} worker(s) registered", timeout=60, interval=0.01,
                              log=self.workdir / ("rq-worker-0.log" if reference else "worker-0.log"))
        return workers, time.time()

    def stop_workers(self, workers: list[Any]) -> None:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in workers:
            self.procs.stop(proc)

    def redis_calls(self) -> dict[str, int]:
        """Calls per Redis command since the last CONFIG RESETSTAT."""
        stats = self.redis.client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    def note_receiver_memory(self, when: str) -> None:
        self.results.setdefault("receiver_memory_timeline", []).append({"after": when, **self.receiver_memory()})

    def run_records(self, ids: list[str]) -> list[dict[str, Any]]:
        raws = self.redis.client.mget([f"responder:run:{i}" for i in ids])
        return [json.loads(raw) for raw in raws if raw is not None]

    # ----------------------------------------------------------------- 1. intake

    def intake(self) -> None:
        rounds = 2 if self.quick else 4
        seconds = 2 if self.quick else 5
        log(f"1. intake: {rounds} alternating rounds of {seconds}s, wrk -t2 -c16 (workers not running)")
        bare, bare_url = self.procs.start_bare(self.workdir)
        http_only, http_only_url = self.procs.start_receiver(self.env, self.workdir, http_only=True)
        naive, naive_url = self.procs.start_naive(self.workdir, self.redis.url)
        servers = {"bare": (bare, bare_url), "responder": (self.receiver, self.receiver_url),
                   "http-only": (http_only, http_only_url), "naive": (naive, naive_url)}
        tag = random.randrange(1, 60000)
        try:
            for _, url in servers.values():  # warm-up, not recorded
                self.load.run_wrk(url, token=TOKEN, tag=tag, seconds=1)
                tag += 1
            self.redis.flush()
            per_round: list[dict[str, Any]] = []
            for index in range(rounds):
                for name, (proc, url) in servers.items():
                    self.redis.client.config_resetstat()
                    pid = proc.pid
                    cpu_before = self.procs.cpu_seconds(pid, with_reaped_children=False)
                    redis_before = self.procs.cpu_seconds(self.redis.proc.pid)
                    result = self.load.run_wrk(url, token=TOKEN, tag=tag, seconds=seconds)
                    cpu = self.procs.cpu_seconds(pid, with_reaped_children=False) - cpu_before
                    redis_cpu = self.procs.cpu_seconds(self.redis.proc.pid) - redis_before
                    tag += 1
                    result.update(round=index + 1, server=name,
                                  server_cpu_cores=round(cpu / result["seconds"], 2),
                                  server_cpu_ms_per_request=round(cpu * 1000 / max(1, result["requests"]), 3),
                                  redis_cpu_ms_per_request=round(redis_cpu * 1000 / max(1, result["requests"]), 3))
                    if name == "responder":
                        calls = self.redis_calls()
                        accepted = max(1, sum(v for k, v in result["statuses"].items() if k.startswith("2")))
                        # the intake's atomic commit is one EVALSHA (a batch of notifications each)
                        result["redis_commits_per_request"] = round(calls.get("evalsha", 0) / accepted, 3)
                        result["redis_commands_per_request"] = round(sum(calls.values()) / accepted, 1)
                        result["redis_used_mib"] = round(self.redis.used_memory() / 2**20, 1)
                    if name in ("responder", "naive"):
                        self.redis.flush()  # keep Redis small between rounds
                    per_round.append(result)
                    log(f"   round {index + 1} {name:9s} {result['rps']:8.0f} req/s  "
                        f"p50 {result['latency_ms']['p50']:6.2f} ms  p99 {result['latency_ms']['p99']:6.2f} ms  "
                        f"statuses {result['statuses']}  CPU {result['server_cpu_ms_per_request']:.3f} ms/req "
                        f"({result['server_cpu_cores']} cores)"
                        + (f"  commits per 202: {result['redis_commits_per_request']}" if name == "responder" else ""))
        finally:
            self.procs.stop(bare)
            self.procs.stop(http_only)
            self.procs.stop(naive)

        def of(server: str) -> list[dict[str, Any]]:
            return [r for r in per_round if r["server"] == server]

        bare_rps = statistics.median(r["rps"] for r in of("bare"))
        resp_rps = statistics.median(r["rps"] for r in of("responder"))
        ratios = [resp["rps"] / b["rps"] for b, resp in zip(of("bare"), of("responder"), strict=True)]
        self.results["intake"] = {
            "rounds": per_round,
            "seconds_per_round": seconds,
            "bare_rps_median": bare_rps,
            "responder_rps_median": resp_rps,
            "ratio": round(resp_rps / bare_rps, 3),
            "http_only_rps_median": statistics.median(r["rps"] for r in of("http-only")),
            "http_only_ratio": round(statistics.median(r["rps"] for r in of("http-only")) / bare_rps, 3),
            "http_only_cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in of("http-only")),
            "naive_rps_median": statistics.median(r["rps"] for r in of("naive")),
            "naive_ratio": round(statistics.median(r["rps"] for r in of("naive")) / bare_rps, 3),
            "naive_non_2xx": sum(r["non_2xx"] for r in of("naive")),
            # the target: responder at least 3 times the naive RQ-in-the-handler reference of the same run
            "over_naive": round(resp_rps / statistics.median(r["rps"] for r in of("naive")), 2),
            "over_naive_per_round": [round(resp["rps"] / n["rps"], 2)
                                     for n, resp in zip(of("naive"), of("responder"), strict=True)],
            "ratio_per_round": [round(r, 3) for r in ratios],
            "responder_p50_ms_median": statistics.median(r["latency_ms"]["p50"] for r in of("responder")),
            "responder_p99_ms_median": statistics.median(r["latency_ms"]["p99"] for r in of("responder")),
            "responder_p99_ms_max": max(r["latency_ms"]["p99"] for r in of("responder")),
            "bare_p99_ms_median": statistics.median(r["latency_ms"]["p99"] for r in of("bare")),
            "responder_non_2xx": sum(r["non_2xx"] for r in of("responder")),
            "responder_socket_errors": sum(sum(r["socket_errors"].values()) for r in of("responder")),
            "responder_requests": sum(r["requests"] for r in of("responder")),
            "redis_commits_per_request": statistics.median(r["redis_commits_per_request"] for r in of("responder")),
            "responder_cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in of("responder")),
            "bare_cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in of("bare")),
            "responder_cpu_cores": statistics.median(r["server_cpu_cores"] for r in of("responder")),
            "redis_commands_per_request": statistics.median(r["redis_commands_per_request"] for r in of("responder")),
        }

    # ----------------------------------------------------------------- 1b. intake, acknowledged when replicated

    def replicas(self) -> None:
        """RESPONDER_REDIS_MIN_REPLICAS=0 and =1 side by side, the same Redis with one replica attached
        to both: what waiting for the replica (WAIT 1) costs in throughput and p99."""
        rounds = 2 if self.quick else 4
        seconds = 2 if self.quick else 5
        log(f"1b. intake with a replica: MIN_REPLICAS 0 vs 1, {rounds} alternating rounds of {seconds}s")
        replica = self.procs.start_replica(self.workdir / "replica", self.redis)
        waiting, waiting_url = self.procs.start_receiver({**self.env, "RESPONDER_REDIS_MIN_REPLICAS": "1"},
                                                    self.workdir, name="receiver-min-replicas")
        servers = {"min_replicas_0": self.receiver_url, "min_replicas_1": waiting_url}
        tag = random.randrange(60000, 120000)
        per_round: list[dict[str, Any]] = []
        try:
            for url in servers.values():  # warm-up, not recorded
                self.load.run_wrk(url, token=TOKEN, tag=tag, seconds=1)
                tag += 1
            for index in range(rounds):
                for name, url in servers.items():
                    result = self.load.run_wrk(url, token=TOKEN, tag=tag, seconds=seconds)
                    tag += 1
                    self.redis.flush()
                    result.update(round=index + 1, server=name)
                    per_round.append(result)
                    log(f"   round {index + 1} {name} {result['rps']:8.0f} req/s  "
                        f"p99 {result['latency_ms']['p99']:6.2f} ms  statuses {result['statuses']}")
        finally:
            self.procs.stop(waiting)
            self.procs.stop(replica)

        def median(server: str, value: Callable[[dict[str, Any]], float]) -> float:
            return float(statistics.median(value(r) for r in per_round if r["server"] == server))

        rps0, rps1 = (median(s, lambda r: r["rps"]) for s in servers)
        self.results["replicas"] = {
            "rounds": per_round,
            "rps_median": {"0": rps0, "1": rps1},
            "p99_ms_median": {s[-1]: median(s, lambda r: r["latency_ms"]["p99"]) for s in servers},
            "ratio": round(rps1 / rps0, 3),
            "non_2xx": {s[-1]: sum(r["non_2xx"] for r in per_round if r["server"] == s) for s in servers},
        }

    # ----------------------------------------------------------------- 1. intake, by instructions

    def instructions(self) -> None:
        from bench import instructions

        if not instructions.available():
            log("1. intake by instructions: skipped (valgrind is not installed: apt-get install -y valgrind)")
            self.results["instructions"] = {"skipped": "valgrind is not installed"}
            return
        seconds = 3 if self.quick else 20
        log(f"1. intake by instructions: each server under callgrind, {seconds}s of wrk -t2 -c16 counted")
        starts = {
            "bare": lambda under: self.procs.start_bare(self.workdir, under=under,
                                                        timeout=instructions.STARTUP_SECONDS),
            "http-only": lambda under: self.procs.start_receiver(self.env, self.workdir, http_only=True, under=under,
                                                                 timeout=instructions.STARTUP_SECONDS),
            "responder": lambda under: self.procs.start_receiver(self.env, self.workdir, under=under,
                                                                 timeout=instructions.STARTUP_SECONDS),
            # the rounds run it at warning; at the default level each decision is a log line
            "responder-info": lambda under: self.procs.start_receiver({**self.env, "RESPONDER_LOG_LEVEL": "info"},
                                                                      self.workdir, under=under,
                                                                      timeout=instructions.STARTUP_SECONDS),
        }
        counted: dict[str, Any] = {}
        for tag, (name, start) in enumerate(starts.items(), start=random.randrange(60000, 90000)):
            self.redis.client.config_resetstat()
            counted[name] = instructions.count(name, start, self.workdir, token=TOKEN, tag=tag * 2, seconds=seconds)
            commits = self.redis_calls().get("evalsha", 0)  # the receiver's commits, warm-up included
            self.redis.flush()
            log(f"   {name:14s} {counted[name]['per_request']:>9,} instructions per request "
                f"({counted[name]['requests']} requests counted, statuses {counted[name]['statuses']}"
                + (f", {commits} commits)" if name.startswith("responder") else ")"))
            if name.startswith("responder"):
                counted[name]["redis_commits"] = commits
        bare = counted["bare"]["per_request"]
        self.results["instructions"] = {
            "servers": counted,
            "seconds": seconds,
            "ratio": round(bare / counted["responder"]["per_request"], 3),
            "http_only_ratio": round(bare / counted["http-only"]["per_request"], 3),
            "info_level_ratio": round(bare / counted["responder-info"]["per_request"], 3),
        }

    # ----------------------------------------------------------------- 2 and 6. group sizes

    def groups(self) -> None:
        reps = {1: 10, 10: 10, 100: 5, 1000: 3} if self.quick else {1: 40, 10: 30, 100: 15, 1000: 10}
        log("2/6. ack time by group size, fresh alerts each post, distinct models (workers not running)")
        scaling: list[dict[str, Any]] = []
        for size, count in reps.items():
            times = []
            for _ in range(count):
                decisions, _, seconds = self.post(self.load.group_many_models(size))
                queued = sum(d["decision"] == "queued" for d in decisions["alerts"])
                if queued != size:
                    raise RuntimeError(f"expected {size} queued, got {queued}: {decisions['alerts'][:3]}")
                times.append(seconds * 1000)
                self.redis.flush()
            scaling.append(self._group_row(size, "distinct models", times))
        one_model = {1: 10, 10: 10, 100: 5} if self.quick else {1: 20, 10: 20, 100: 10}
        log("6. ack time by group size, one model per group (the shipped group_by [alertname, model_id])")
        for size, count in one_model.items():
            times = []
            for _ in range(count):
                decisions, _, seconds = self.post(self.load.group_one_model(size))
                times.append(seconds * 1000)
                self.redis.flush()
            scaling.append(self._group_row(size, "one model", times))
        self.results["groups"] = scaling
        large = next(r for r in scaling if r["size"] == 1000 and r["composition"] == "distinct models")
        self.results["large_group"] = large

    def _group_row(self, size: int, composition: str, times: list[float]) -> dict[str, Any]:
        median = statistics.median(times)
        row = {"size": size, "composition": composition, "posts": len(times),
               "ack_ms_median": round(median, 2), "ack_ms_max": round(max(times), 2),
               "ack_ms_min": round(min(times), 2), "ms_per_alert": round(median / size, 3),
               "ack_ms_all": [round(t, 2) for t in times]}
        log(f"   {composition:15s} {size:5d} alerts: median {median:8.1f} ms  max {max(times):8.1f} ms  "
            f"{median / size:6.3f} ms/alert")
        return row

    def one_model_thousand(self) -> None:
        """The worst case, run last: 1,000 alerts of one model. Each run record carries the other 999
        alerts of its group, so this is slow and large; measured once, after the memory readings."""
        log("2b. one notification of 1,000 alerts of one model (after the memory readings)")
        before = self.redis.used_memory()
        decisions, _, seconds = self.post(self.load.group_one_model(1000))
        after = self.redis.used_memory()
        queued = sum(d["decision"] == "queued" for d in decisions["alerts"])
        row = self._group_row(1000, "one model", [seconds * 1000])
        row.update(queued=queued, redis_growth_mib=round((after - before) / 2**20, 1),
                   receiver_after=self.receiver_memory())
        self.redis.flush()
        self.results["groups"].append(row)
        self.results["large_group_one_model"] = row
        self.note_receiver_memory("1,000 alerts of one model")
        log(f"   Redis grew {row['redis_growth_mib']} MiB; receiver RSS now {row['receiver_after']['rss_mib']} MiB")

    # ----------------------------------------------------------------- 3. alert to first action

    def first_action(self) -> None:
        count = 15 if self.quick else 50
        log(f"3. alert to first GitHub call: {count} single alerts, one idle worker, pacing off")
        self.reset_state()
        workers, _ = self.start_workers(1)
        samples: list[dict[str, Any]] = []
        try:
            time.sleep(1.0)  # let it settle into its blocking wait for a job
            for _ in range(count):
                mark = self.github.mark()
                sent_epoch = time.time() - (time.perf_counter() - mark)
                decisions, sent, ack = self.post(self.load.group_many_models(1))
                sent_epoch += sent - mark
                run_id = decisions["alerts"][0]["job_id"]
                first = self.procs.wait_until(partial(self.github.first_since, mark),
                                              "the first GitHub call", timeout=30, interval=0.001)
                done = self.procs.wait_until(partial(self._ended, run_id), f"run {run_id} to end",
                                             timeout=30, interval=0.005)
                rq_started = cast(bytes | None, self.redis.client.hget(f"rq:job:{run_id}", "started_at"))
                rq_started_epoch = (datetime.strptime(rq_started.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
                                    .replace(tzinfo=UTC).timestamp() if rq_started else float("nan"))
                run_started_epoch = datetime.fromisoformat(done["started_at"]).timestamp()
                samples.append({
                    "ack_ms": round(ack * 1000, 2),
                    "rq_job_started_ms": round((rq_started_epoch - sent_epoch) * 1000, 2),
                    "run_started_ms": round((run_started_epoch - sent_epoch) * 1000, 2),
                    "first_call_ms": round((first[0] - sent) * 1000, 2),
                    "first_call": f"{first[1]} {first[2].split('?')[0]}",
                    "run_status": done["status"],
                    "run_ms": round(self._run_ms(done), 2),
                })
                time.sleep(random.uniform(0.05, 0.15))  # the worker goes back to waiting for a job
            memory = self.worker_memory(workers)
        finally:
            self.stop_workers(workers)
        values = [s["first_call_ms"] for s in samples]
        self.results["first_action"] = {
            "alerts": count,
            "p50_ms": round(percentile(values, 50), 2),
            "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2),
            "max_ms": round(max(values), 2),
            "ack_p50_ms": round(percentile([s["ack_ms"] for s in samples], 50), 2),
            "rq_job_started_p50_ms": round(percentile([s["rq_job_started_ms"] for s in samples], 50), 2),
            "run_started_p50_ms": round(percentile([s["run_started_ms"] for s in samples], 50), 2),
            "run_duration_p50_ms": round(percentile([s["run_ms"] for s in samples], 50), 2),
            "first_calls": sorted({s["first_call"] for s in samples}),
            "statuses": sorted({s["run_status"] for s in samples}),
            "samples": samples,
            "worker_memory": memory,
        }
        log(f"   first call p50 {percentile(values, 50):.1f} ms  p99 {percentile(values, 99):.1f} ms  "
            f"(p50 202 at {self.results['first_action']['ack_p50_ms']} ms, RQ job started at "
            f"{self.results['first_action']['rq_job_started_p50_ms']} ms, run started at "
            f"{self.results['first_action']['run_started_p50_ms']} ms; first call: "
            f"{', '.join(self.results['first_action']['first_calls'])})")

    def _ended(self, run_id: str) -> dict[str, Any] | None:
        raw = self.redis.client.get(f"responder:run:{run_id}")
        record = json.loads(raw) if raw else None
        return record if record and record["status"] in ("succeeded", "failed") else None

    @staticmethod
    def _run_ms(record: dict[str, Any]) -> float:
        if not record.get("started_at") or not record.get("ended_at"):
            return float("nan")
        started = datetime.fromisoformat(record["started_at"])
        ended = datetime.fromisoformat(record["ended_at"])
        return (ended - started).total_seconds() * 1000

    # ----------------------------------------------------------------- 4 and 6. playbook throughput

    def throughput(self) -> None:
        runs = 60 if self.quick else 400
        deadline = 20 if self.quick else 45
        counts = (1, 2) if self.quick else (1, 2, 4)
        # the reference pair runs right before and right after the 2-worker round (the target's), so
        # that both see the same machine
        order: list[int | None] = []
        for count in counts:
            order += [None, count, None] if count == 2 else [count]
        log(f"4/6. drift playbook throughput: {runs} queued runs (distinct models), workers {counts}; reference: "
            f"2 RQ SimpleWorkers, {runs} queued no-op jobs, before and after the 2-worker round")
        rows, reference = [], []
        for item in order:
            if item is None:
                reference.append(self._reference_round(runs, deadline))
            else:
                rows.append(self._drift_round(item, runs, deadline))
        self.results["throughput"] = rows
        two = next(r for r in rows if r["workers"] == 2)
        rate = statistics.mean(r["jobs_per_second"] for r in reference)
        self.results["throughput_reference"] = {
            "workers": 2,
            "worker_class": "rq.worker.SimpleWorker",
            "job": "bench.noop.noop",
            "jobs": runs,
            "rounds": reference,
            "jobs_per_second": round(rate, 1),
            "drift_runs_per_second": two["runs_per_second"],
            "ratio": round(two["runs_per_second"] / rate, 3) if rate else 0.0,
            "ratio_per_round": [round(two["runs_per_second"] / r["jobs_per_second"], 3) if r["jobs_per_second"]
                                else 0.0 for r in reference],
            "complete": all(r["finished"] == r["jobs"] for r in reference),
        }
        ref = self.results["throughput_reference"]
        log(f"   drift runs, 2 workers / RQ SimpleWorker pair, no-op job: {ref['ratio']:.2f} "
            f"({two['runs_per_second']} / {ref['jobs_per_second']} per s; by reference round "
            f"{', '.join(f'{x:.2f}' for x in ref['ratio_per_round'])})")
        self.reset_state()

    def _work_off(self, workers: list[Any], jobs: int, deadline: float) -> dict[int, float]:
        """Wait until ``jobs`` jobs of the queue finished or failed (RQ's registries) or ``deadline``
        seconds passed; returns the peak RSS (MiB) of each worker's children meanwhile, by worker pid."""
        from rq.registry import FailedJobRegistry, FinishedJobRegistry

        finished_key = FinishedJobRegistry(QUEUE, connection=self.redis.client).key
        failed_key = FailedJobRegistry(QUEUE, connection=self.redis.client).key
        peak_children: dict[int, float] = {}
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.zcard(finished_key)
            pipe.zcard(failed_key)
            done = sum(pipe.execute())
            for proc in workers:
                for pid in self.procs.process_tree(proc.pid)[1:]:
                    rss = self.procs.proc_status(pid).get("VmRSS", 0) / MB
                    peak_children[proc.pid] = max(peak_children.get(proc.pid, 0), rss)
            if done >= jobs:
                break
            time.sleep(0.1)
        return peak_children

    @staticmethod
    def _per_second(end_times: list[float], registered: float) -> float:
        """Jobs that ended after every worker had registered / (last end - registration time)."""
        last = max(end_times, default=registered)
        after_registration = [t for t in end_times if t >= registered]
        return len(after_registration) / (last - registered) if last > registered else 0.0

    def _drift_round(self, workers_count: int, runs: int, deadline: float) -> dict[str, Any]:
        self.reset_state()
        ids = []
        for start in range(0, runs, 25):
            decisions, _, _ = self.post(self.load.group_many_models(min(25, runs - start)))
            ids += [d["job_id"] for d in decisions["alerts"] if d["decision"] == "queued"]
        assert len(ids) == runs, len(ids)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        redis_cpu_before = self.procs.cpu_seconds(self.redis.proc.pid)
        machine_before = self.procs.machine_cpu()
        spawned = time.time()
        workers, registered = self.start_workers(workers_count)
        self.redis.client.config_resetstat()
        workers_cpu_before = sum(self.procs.cpu_seconds(p.pid) for p in workers)
        peak_children = self._work_off(workers, runs, deadline)
        wall_cpu = time.time() - spawned
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        workers_cpu = sum(self.procs.cpu_seconds(p.pid) for p in workers) - workers_cpu_before
        redis_cpu = self.procs.cpu_seconds(self.redis.proc.pid) - redis_cpu_before
        machine_after = self.procs.machine_cpu()
        calls = self.redis_calls()
        memory = self.worker_memory(workers)
        self.stop_workers(workers)
        records = self.run_records(ids)
        ended = [r for r in records if r["status"] in ("succeeded", "failed") and r.get("ended_at")]
        succeeded = sum(r["status"] == "succeeded" for r in records)
        end_times = sorted(datetime.fromisoformat(r["ended_at"]).timestamp() for r in ended)
        last = end_times[-1] if end_times else registered
        durations = [self._run_ms(r) for r in ended]
        bench_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        failures = sorted({s.get("error") or "" for r in records if r["status"] == "failed"
                           for s in r.get("steps", []) if s.get("status") == "failed"})[:5]
        row = {
            "workers": workers_count,
            "runs": runs,
            "completed": len(ended),
            "succeeded": succeeded,
            "failed": sum(r["status"] == "failed" for r in records),
            "failures": failures,
            "runs_per_second": round(self._per_second(end_times, registered), 1),
            "runs_per_second_wall": round(len(ended) / (last - spawned), 1) if last > spawned else 0.0,
            "worker_start_s": round(registered - spawned, 2),
            "run_duration_p50_ms": round(percentile(durations, 50), 1),
            "github_requests": len(self.github.arrivals),
            "github_requests_per_run": round(len(self.github.arrivals) / max(1, len(ended)), 1),
            "fake_github_cpu_share": round(bench_cpu / wall_cpu, 2),  # this process: the fake + polling
            "cpu_ms_per_run": {
                "workers_and_children": round(workers_cpu * 1000 / max(1, len(ended)), 1),
                "redis": round(redis_cpu * 1000 / max(1, len(ended)), 1),
                "fake_github_and_bench": round(bench_cpu * 1000 / max(1, len(ended)), 1),
            },
            "machine_busy_cores": round((machine_after[0] - machine_before[0])
                                        / (machine_after[1] - machine_before[1]) * (os.cpu_count() or 1), 2),
            "redis_commands_per_run": round(sum(calls.values()) / max(1, len(ended)), 1),
            "redis_top_commands_per_run": {k: round(v / max(1, len(ended)), 1) for k, v in
                                           sorted(calls.items(), key=lambda kv: -kv[1])[:8]},
            "redis_calls_per_run": {k: round(v / max(1, len(ended)), 2) for k, v in sorted(calls.items())},
            "worker_memory": memory,
            "children_peak_rss_mib": {str(k): round(v, 1) for k, v in peak_children.items()},  # by worker pid
        }
        log(f"   {workers_count} worker(s): {row['runs_per_second']:6.1f} runs/s  ({row['succeeded']}/{runs} "
            f"succeeded, run p50 {row['run_duration_p50_ms']} ms, {row['github_requests_per_run']} GitHub "
            f"calls/run, {row['redis_commands_per_run']} Redis commands/run, worker CPU "
            f"{row['cpu_ms_per_run']['workers_and_children']} ms/run, machine busy "
            f"{row['machine_busy_cores']} of {os.cpu_count()} cores)")
        return row

    def _reference_round(self, jobs: int, deadline: float) -> dict[str, Any]:
        """The reference of the worker-throughput ratio: ``jobs`` no-op jobs (bench/noop.py) queued up
        front on the bench's queue with RQ's own ``enqueue_many``, 25 to a call as the drift alerts
        are posted, then two plain RQ ``SimpleWorker`` processes started; jobs/s measured as the drift
        runs/s are, from RQ's ``ended_at`` of each job (set when the function returned, as a run
        record's is when the playbook ended)."""
        from rq import Queue

        self.reset_state()
        queue = Queue(QUEUE, connection=self.redis.client)
        ids = [f"noop-{n}" for n in range(jobs)]
        for start in range(0, jobs, 25):
            queue.enqueue_many([Queue.prepare_data("bench.noop.noop", job_id=job_id)
                                for job_id in ids[start:start + 25]])
        redis_cpu_before = self.procs.cpu_seconds(self.redis.proc.pid)
        machine_before = self.procs.machine_cpu()
        spawned = time.time()
        workers, registered = self.start_workers(2, reference=True)
        self.redis.client.config_resetstat()
        workers_cpu_before = sum(self.procs.cpu_seconds(p.pid) for p in workers)
        self._work_off(workers, jobs, deadline)
        workers_cpu = sum(self.procs.cpu_seconds(p.pid) for p in workers) - workers_cpu_before
        redis_cpu = self.procs.cpu_seconds(self.redis.proc.pid) - redis_cpu_before
        machine_after = self.procs.machine_cpu()
        calls = self.redis_calls()
        rss = [round(self.procs.proc_status(p.pid).get("VmRSS", 0) / MB, 1) for p in workers]
        self.stop_workers(workers)
        pipe = self.redis.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "ended_at")
        fields = cast(list[list[bytes | None]], pipe.execute())
        end_times = sorted(datetime.strptime(ended.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
                           for status, ended in fields if status == b"finished" and ended)
        done = len(end_times)
        row: dict[str, Any] = {
            "workers": 2,
            "jobs": jobs,
            "finished": done,
            "statuses": dict(sorted(Counter((s or b"gone").decode() for s, _ in fields).items())),
            "jobs_per_second": round(self._per_second(end_times, registered), 1),
            "worker_start_s": round(registered - spawned, 2),
            "cpu_ms_per_job": {"workers": round(workers_cpu * 1000 / max(1, done), 2),
                               "redis": round(redis_cpu * 1000 / max(1, done), 2)},
            "machine_busy_cores": round((machine_after[0] - machine_before[0])
                                        / (machine_after[1] - machine_before[1]) * (os.cpu_count() or 1), 2),
            "redis_commands_per_job": round(sum(calls.values()) / max(1, done), 1),
            "redis_calls_per_job": {k: round(v / max(1, done), 2) for k, v in sorted(calls.items())},
            "worker_rss_mib": rss,
        }
        log(f"   reference, 2 RQ SimpleWorkers, no-op job: {row['jobs_per_second']:6.1f} jobs/s  ({done}/{jobs} "
            f"finished, {row['redis_commands_per_job']} Redis commands/job, worker CPU "
            f"{row['cpu_ms_per_job']['workers']} ms/job, machine busy {row['machine_busy_cores']} of "
            f"{os.cpu_count()} cores)")
        return row

    # ----------------------------------------------------------------- 5. memory

    def memory(self) -> None:
        two = next(r for r in self.results["throughput"] if r["workers"] == 2)
        self.results["memory"] = {
            "receiver": self.receiver_memory(),
            "workers_2": two["worker_memory"],
            "worker_rss_mib_max": max(w["rss_mib"] for w in two["worker_memory"]),
            "note": "worker RSS is each `responder worker` main process, read while it was still running after "
                    "the 2-worker throughput load; runs execute in that process (no work horse is forked per "
                    "run) and one worker runs RQ's scheduler as a child process (listed under children; "
                    "throughput[].children_peak_rss_mib has each worker's children's peak during the load)",
        }
        log(f"5. memory: receiver RSS {self.results['memory']['receiver']['rss_mib']} MiB "
            f"(peak {self.results['memory']['receiver']['peak_rss_mib']}), worker RSS max "
            f"{self.results['memory']['worker_rss_mib_max']} MiB")

    # ----------------------------------------------------------------- 7. GitHub calls per incident

    def github_calls(self) -> None:
        """One drift notification (two segments of one model) through the receiver, two workers, the
        retraining run it dispatches followed to completion; every request the fake received for it."""
        from bench import github_calls

        poll = 2.0
        queued, running = (2.0, 6.0) if self.quick else (4.0, 16.0)
        workers_count = 2
        log(f"7. GitHub calls of one drift incident followed to completion: workflow run queued {queued:g} s, "
            f"running {running:g} s, polled every {poll:g} s, {workers_count} workers")
        self.reset_state()
        fake = self.github
        saved = (fake.list_lag_seconds, fake.queued_seconds, fake.running_seconds)
        fake.list_lag_seconds, fake.queued_seconds, fake.running_seconds = 2.0, queued, running
        env = {**self.env, "RESPONDER_FOLLOW_POLL_SECONDS": f"{poll:g}", "RESPONDER_TRACKER": "github"}
        epoch = time.time() - time.perf_counter()  # BenchGitHub.arrivals are perf_counter times
        workers: list[Any] = []
        try:
            workers, _ = self.start_workers(workers_count, env)
            # the workers settle, one starts RQ's scheduler (it runs the polls); the alert comes at any
            # moment of the scheduler's one-second cycle, as a real one would
            time.sleep(random.uniform(1.0, 2.0))
            first_arrival, first_storage = len(fake.arrivals), len(fake.storage_requests)
            rate_before = fake.rate_remaining
            payload = json.loads(DRIFT_SAMPLE.read_text())
            decisions, _, _ = self.post(payload)
            ids = [d["job_id"] for d in decisions["alerts"] if d["decision"] == "queued"]
            if not ids:
                raise RuntimeError(f"the drift sample queued no run: {decisions}")
            # the retraining workflow uploads its summary, as config/github-workflows/ does
            dispatch = self.procs.wait_until(lambda: fake.dispatches, "the retraining dispatch", timeout=30)[0]
            fake.add_artifact(dispatch.run_id, "training-summary",
                              {"training-summary.json": {"status": "passed", "auc": 0.91, "rows": 120000}})
            records = self.procs.wait_until(partial(self._followed_and_reported, ids),
                                            "the workflow run followed and reported on the ticket",
                                            timeout=queued + running + 60, interval=0.1,
                                            log=self.workdir / "worker-0.log")
            time.sleep(2 * poll)  # a stray poll after the report would show here
            arrivals = [(t + epoch, m, target, s) for t, m, target, s in fake.arrivals[first_arrival:]]
            storage = [r.status for r in fake.storage_requests[first_storage:]]
            recorded = fake.requests
            rate_spent = rate_before - fake.rate_remaining
            follow_jobs = {r["id"]: self._follow_jobs(r) for r in records}
            dispatches = fake.dispatches
        finally:
            self.stop_workers(workers)
            fake.list_lag_seconds, fake.queued_seconds, fake.running_seconds = saved
        # every playbook call came before the last run ended; each run's following starts when it ended
        runs_ended = max(datetime.fromisoformat(r["ended_at"]).timestamp() for r in records)
        # the fake's dispatches in the order their POSTs arrived: when each run was created
        posts = [t for t, m, target, s in arrivals if m == "POST" and target.endswith("/dispatches") and s < 300]
        dispatched_at = {str(d.run_id): t for d, t in zip(dispatches, posts, strict=False)}
        followed = []
        for record in records:
            follow_start = datetime.fromisoformat(record["ended_at"]).timestamp()
            for run in record["workflow_runs"]:
                path = f"/repos/{fake.full_name}/actions/runs/{run['run_id']}"
                polls = [a for a in arrivals if a[1] == "GET" and a[2].split("?")[0] == path]
                conditional = sum(1 for r in recorded if r.method == "GET" and r.path.split("?")[0] == path
                                  and any(k.lower() == "if-none-match" for k in r.headers))
                dispatch_time = dispatched_at.get(str(run["run_id"]), follow_start)
                result = github_calls.following(polls, follow_start=follow_start,
                                                 completed_at=dispatch_time + queued + running, poll_seconds=poll,
                                                 conditional_polls=conditional)
                result.update(run=record["id"], step=run["step"], workflow=run["workflow"], run_id=run["run_id"],
                              status=run["status"], conclusion=run["conclusion"], reported=run["reported"],
                              artifacts=run["artifacts"], follow_jobs=follow_jobs[record["id"]].get(run["step"], 0))
                followed.append(result)
        if not followed:
            raise RuntimeError("no workflow run was followed")
        self.results["github_calls"] = {
            "settings": {"poll_seconds": poll, "list_lag_seconds": 2.0, "queued_seconds": queued,
                         "running_seconds": running, "workers": workers_count, "tracker": "github",
                         "payload": DRIFT_SAMPLE.name},
            "runs": [{"id": r["id"], "status": r["status"], "steps": {s["name"]: s["status"] for s in r["steps"]}}
                     for r in records],
            "calls": github_calls.count(arrivals, storage),
            "playbook_calls": github_calls.count([a for a in arrivals if a[0] < runs_ended], []),
            "following_calls": github_calls.count([a for a in arrivals if a[0] >= runs_ended], storage),
            "rate_limit_spent": rate_spent,
            "followed": followed,
            "following": followed[0],
            "ok": all(f["ok"] for f in followed),
        }
        result = self.results["github_calls"]
        log(f"   {len(records)} run(s) {', '.join(sorted({r['status'] for r in records}))}; "
            f"{github_calls.summary_line(result)}")
        for f in followed:
            log(f"   {f['workflow']} run {f['run_id']}: {f['status']}/{f['conclusion']}, {f['polls']} polls "
                f"({f['polls_304']} answered 304, {f['polls_sending_if_none_match']} sent If-None-Match) at "
                f"{f['poll_offsets_s']} s after the run ended (statuses {f['poll_statuses']}); completed "
                f"{f['completed_after_s']} s after, seen {f['seen_completed_after_s']} s after (fewest polls that "
                f"could: {f['fewest_polls_to_see_it_completed']}); {f['follow_jobs']} follow jobs")
        log(f"   following costs <= 1 conditional read per poll interval: {'yes' if result['ok'] else 'no'}")

    def _followed_and_reported(self, ids: list[str]) -> list[dict[str, Any]] | None:
        records = self.run_records(ids)
        if len(records) < len(ids) or any(r["status"] not in ("succeeded", "failed") for r in records):
            return None
        runs = [run for r in records for run in r.get("workflow_runs", [])]
        return records if runs and all(run["reported"] for run in runs) else None

    def _follow_jobs(self, record: dict[str, Any]) -> dict[str, int]:
        """How many follow jobs (polls, by job id) each followed step of ``record`` had."""
        found = {}
        for run in record.get("workflow_runs", []):
            number = 0
            while self.redis.client.exists(f"rq:job:{record['id']}-follow-{run['step']}-{number + 1}"):
                number += 1
            found[run["step"]] = number
        return found

    # ----------------------------------------------------------------- all

    def wants(self, part: str) -> bool:
        return not self.args.only or part in self.args.only

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.results["machine"] = machine_info(self.redis.version(), self.load.wrk_version())
        self.results["settings"] = {
            "quick": self.quick,
            "redis_appendfsync": self.args.redis_fsync,
            "env": {k: v for k, v in self.env.items() if k.startswith("RESPONDER_") and "TOKEN" not in k},
        }
        self.note_receiver_memory("start")
        if self.wants("intake"):
            self.intake()
            self.note_receiver_memory("intake")
        if self.wants("replicas"):
            self.replicas()
        if self.wants("instructions"):
            self.instructions()
        if self.wants("groups"):
            self.groups()
            self.note_receiver_memory("group sizes up to 1,000 (distinct models)")
        if self.wants("first-action"):
            self.first_action()
        if self.wants("throughput"):
            self.throughput()
            self.note_receiver_memory("playbook throughput (enqueueing)")
            self.memory()
        if self.wants("groups"):
            self.one_model_thousand()
        if self.wants("github-calls"):
            self.github_calls()
        self.results["machine"]["load_average_at_end"] = list(os.getloadavg())
        self.results["seconds"] = round(time.monotonic() - started, 1)
        return self.results

    def close(self) -> None:
        self.client.close()
        self.procs.stop_all()
        self.github.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


PARTS = ("intake", "replicas", "instructions", "groups", "first-action", "throughput", "github-calls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run (results in bench/results/quick/)")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results, or .../quick)")
    parser.add_argument("--redis-fsync", choices=("always", "everysec", "off"), default="always",
                        help="bench Redis persistence: appendfsync always (docker-compose.yml, default), "
                             "everysec, or off (no AOF)")
    parser.add_argument("--no-install", action="store_true", help="do not install wrk/matplotlib when missing")
    parser.add_argument("--no-readme", action="store_true", help="do not write the table into bench/README.md")
    parser.add_argument("--only", type=lambda v: [p.strip() for p in v.split(",")], default=[],
                        help=f"comma-separated parts to run ({', '.join(PARTS)}); a partial run leaves README alone")
    args = parser.parse_args(argv)
    if unknown := [p for p in args.only if p not in PARTS]:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    out = args.out or (ROOT / "bench" / "results" / ("partial" if args.only else "quick" if args.quick else ""))
    ensure_tools(not args.no_install, args.only)

    from bench import procs, report

    procs.install_cleanup()
    bench = None
    try:
        bench = Bench(args)
        results = bench.run()
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            bench.close()
        procs.stop_all()
    out.mkdir(parents=True, exist_ok=True)
    rows = report.rows(results)
    results["table"] = rows
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plots = [] if args.only else report.plots(results, out)
    table = report.table(rows)
    print()
    print(report.machine_line(results))
    print(table)
    print(f"\nresults: {out / 'results.json'}; plots: {', '.join(str(p) for p in plots) or 'none'}")
    if not args.quick and not args.no_readme and args.out is None and not args.only:
        report.update_readme(ROOT / "bench" / "README.md", results, table, [p.name for p in plots])
        print("bench/README.md updated with this table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
