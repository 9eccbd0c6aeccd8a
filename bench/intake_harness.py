"""The intake alone, in this process: parsing and validation, decisions, records and the commit
(`GroupCommit` over the receiver's own asyncio client), for distinct one-alert notifications
from concurrent callers (16 by default, as wrk's 16 connections deliver them), against a
private redis-server. No HTTP: what a change to the intake costs or saves, without aiohttp
around it.

    python bench/intake_harness.py              # CPU per notification, median of 5 rounds
    python bench/intake_harness.py --callgrind  # instructions per notification (under valgrind)
    python bench/intake_harness.py --callers 1,4,16 --redis-fsync everysec   # by batch size

Each caller waits for its notification's commit before sending the next, so a commit holds
about as many notifications as there are callers: ``--callers`` sets the batch size. Printed
per setting: this process's CPU and the Redis server's CPU per notification (the script, the
AOF written and fsynced, its rewrites), and notifications per commit.

With ``--callgrind`` it runs itself again under ``valgrind --tool=callgrind``, counting only
while the notifications are accepted (``callgrind_control --instr``); a count repeats within
about 0.2 %, where CPU time on a shared VM moves by a fifth, so two commits compare at a glance.
By default batches hold 16 notifications (all callers wait together), about three times the
receiver's under wrk, so costs per commit weigh less than they do there.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import instructions, load, procs  # noqa: E402

CALLERS = [16]
COUNTING = "RESPONDER_BENCH_COUNTING"  # set in the run under valgrind: toggle counting around the work


class Round(NamedTuple):
    cpu: float  # this process's CPU per notification, s
    redis_cpu: float  # the Redis server's, s
    per_commit: float  # notifications per commit (EVALSHA)


def bodies(count: int) -> list[bytes]:
    return [json.dumps(load.notification([load.alert(load.new_model(), segment="eu")])).encode()
            for _ in range(count)]


async def accept_all(per_caller: int, rounds: int, redis: procs.RedisServer, callers: int) -> list[Round]:
    from responder.alerts import Notification
    from responder.groupcommit import GroupCommit
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.settings import Settings
    from responder.store.redisconn import async_redis_client, redis_client

    settings = Settings()
    commit = GroupCommit(Intake(redis_client(settings), settings, load_catalog(settings.playbooks_dir)),
                         async_redis_client(settings))

    async def caller(raws: list[bytes]) -> None:
        for raw in raws:
            await commit.accept(Notification.model_validate_json(raw), raw)

    await asyncio.gather(*(caller(bodies(2)) for _ in range(callers)))  # warm-up, not counted
    measured = []
    for _ in range(rounds):
        work = [bodies(per_caller) for _ in range(callers)]
        redis.client.config_resetstat()
        redis_before = procs.cpu_seconds(redis.proc.pid)
        counting = os.environ.get(COUNTING) == "1"
        if counting:
            instructions.control("--instr=on", os.getpid())
        started = time.process_time()
        await asyncio.gather(*(caller(raws) for raws in work))
        spent = time.process_time() - started
        if counting:
            instructions.control("--instr=off", os.getpid())
        redis_spent = procs.cpu_seconds(redis.proc.pid) - redis_before
        commits = int(redis.client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
        count = per_caller * callers
        measured.append(Round(spent / count, redis_spent / count, count / max(1, commits)))
        redis.flush()
    return measured


def measure(per_caller: int, rounds: int, callers: list[int], fsync: str) -> dict[int, list[Round]]:
    procs.install_cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="responder-harness-"))
    redis = procs.RedisServer(workdir, fsync=fsync)
    github = types.SimpleNamespace(url="http://127.0.0.1:9", token="unused", full_name="acme/unused")
    os.environ.update({k: v for k, v in procs.responder_env(redis.url, github, "unused", "harness").items()
                       if k.startswith("RESPONDER_")})
    gc.collect()
    gc.freeze()  # as `responder serve` does
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        return {n: asyncio.run(accept_all(per_caller, rounds, redis, n)) for n in callers}
    finally:
        procs.stop_all()


def count_instructions(per_caller: int, callers: int) -> int:
    """Run this script under callgrind (one round) and return the instructions it counted."""
    out = Path(tempfile.mkdtemp(prefix="responder-callgrind-")) / "callgrind.out"
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--per-caller", str(per_caller), "--rounds", "1", "--callers", str(callers)],
        env={**os.environ, COUNTING: "1"}, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        sys.exit(f"callgrind run failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return int(found.group(1))


def _counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"each count must be 1 or more: {text!r}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--per-caller", type=int, default=None,
                        help="notifications per caller and round (default 400, or 30 with --callgrind)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=_counts, default=CALLERS,
                        help="concurrent callers, the batch size; several, comma-separated, are run in turn "
                             "(default 16)")
    parser.add_argument("--redis-fsync", choices=("always", "everysec", "off"), default="always",
                        help="the Redis server's persistence, as in bench/run.py (default always)")
    args = parser.parse_args()
    if args.callgrind:
        per_caller = args.per_caller or 30
        for callers in args.callers:
            counted = count_instructions(per_caller, callers)
            print(f"{counted / (per_caller * callers):,.0f} instructions per notification "
                  f"({per_caller * callers} notifications, {callers} callers)")
        return 0
    found = measure(args.per_caller or 400, args.rounds, args.callers, args.redis_fsync)
    if os.environ.get(COUNTING) == "1":
        return 0
    for callers, rounds in found.items():
        print(f"{callers} callers: {statistics.median(r.cpu for r in rounds) * 1e6:.1f} µs of CPU per notification "
              f"here (rounds: {', '.join(f'{r.cpu * 1e6:.0f}' for r in rounds)}), "
              f"Redis {statistics.median(r.redis_cpu for r in rounds) * 1e6:.1f} µs; "
              f"{statistics.median(r.per_commit for r in rounds):.1f} notifications per commit "
              f"(median of {len(rounds)} rounds, appendfsync {args.redis_fsync})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
