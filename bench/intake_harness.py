"""The intake alone, in this process: parsing and validation, decisions, records and the commit
(`GroupCommit` over the receiver's own asyncio client), for distinct one-alert notifications
from 16 concurrent callers (as wrk's 16 connections deliver them), against a private
redis-server. No HTTP: what a change to the intake costs or saves, without aiohttp around it.

    python bench/intake_harness.py              # CPU per notification, median of 5 rounds
    python bench/intake_harness.py --callgrind  # instructions per notification (under valgrind)

With ``--callgrind`` it runs itself again under ``valgrind --tool=callgrind``, counting only
while the notifications are accepted (``callgrind_control --instr``); a count repeats within
about 0.2 %, where CPU time on a shared VM moves by a fifth, so two commits compare at a glance.
Batches here hold 16 notifications (all callers wait together), about three times the receiver's
under wrk, so costs per commit weigh less than they do there.
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import instructions, load, procs  # noqa: E402

CALLERS = 16
COUNTING = "RESPONDER_BENCH_COUNTING"  # set in the run under valgrind: toggle counting around the work


def bodies(count: int) -> list[bytes]:
    return [json.dumps(load.notification([load.alert(load.new_model(), segment="eu")])).encode()
            for _ in range(count)]


async def accept_all(per_caller: int, rounds: int, redis: procs.RedisServer) -> list[float]:
    from responder.alerts import Notification
    from responder.groupcommit import GroupCommit
    from responder.intake import Intake
    from responder.playbooks.catalog import load_catalog
    from responder.redisconn import async_redis_client, redis_client
    from responder.settings import Settings

    settings = Settings()
    commit = GroupCommit(Intake(redis_client(settings), settings, load_catalog(settings.playbooks_dir)),
                         async_redis_client(settings))

    async def caller(raws: list[bytes]) -> None:
        for raw in raws:
            await commit.accept(Notification.model_validate_json(raw), raw)

    await asyncio.gather(*(caller(bodies(2)) for _ in range(CALLERS)))  # warm-up, not counted
    cpu_per_notification = []
    for _ in range(rounds):
        work = [bodies(per_caller) for _ in range(CALLERS)]
        counting = os.environ.get(COUNTING) == "1"
        if counting:
            instructions.control("--instr=on", os.getpid())
        started = time.process_time()
        await asyncio.gather(*(caller(raws) for raws in work))
        spent = time.process_time() - started
        if counting:
            instructions.control("--instr=off", os.getpid())
        cpu_per_notification.append(spent / (per_caller * CALLERS))
        redis.flush()
    return cpu_per_notification


def measure(per_caller: int, rounds: int) -> list[float]:
    procs.install_cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="responder-harness-"))
    redis = procs.RedisServer(workdir)
    github = types.SimpleNamespace(url="http://127.0.0.1:9", token="unused", full_name="acme/unused")
    os.environ.update({k: v for k, v in procs.responder_env(redis.url, github, "unused", "harness").items()
                       if k.startswith("RESPONDER_")})
    gc.collect()
    gc.freeze()  # as `responder serve` does
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        return asyncio.run(accept_all(per_caller, rounds, redis))
    finally:
        procs.stop_all()


def count_instructions(per_caller: int) -> int:
    """Run this script under callgrind (one round) and return the instructions it counted."""
    out = Path(tempfile.mkdtemp(prefix="responder-callgrind-")) / "callgrind.out"
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--per-caller", str(per_caller), "--rounds", "1"],
        env={**os.environ, COUNTING: "1"}, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        sys.exit(f"callgrind run failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--per-caller", type=int, default=None,
                        help="notifications per caller and round (default 400, or 30 with --callgrind)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.callgrind:
        per_caller = args.per_caller or 30
        instructions = count_instructions(per_caller)
        print(f"{instructions / (per_caller * CALLERS):,.0f} instructions per notification "
              f"({per_caller * CALLERS} notifications, {CALLERS} callers)")
        return 0
    rounds = measure(args.per_caller or 400, args.rounds)
    if os.environ.get(COUNTING) != "1":
        print(f"{statistics.median(rounds) * 1e6:.1f} µs of CPU per notification (median of {len(rounds)} rounds: "
              + ", ".join(f"{r * 1e6:.0f}" for r in rounds) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
