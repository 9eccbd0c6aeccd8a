"""Instructions per request, counted by callgrind: the intake ratio without the machine's noise.

Wall-clock ratios on a shared 2-core VM move by a fifth from run to run (another tenant, the
CPU's clock). Instruction counts do not: each server runs under ``valgrind --tool=callgrind``
with counting switched on (``callgrind_control -i on``) only while wrk loads it, and the count
is divided by the requests wrk completed in that window. Two runs agree within about 3 % (the
receiver's batches differ a little from run to run). The ratio bare / responder tracks the
throughput ratio on this machine, where the receiver is CPU-bound; it does not see cache misses
or system calls, so it is reported beside the wall-clock ratio, not instead of it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import load, procs

STARTUP_SECONDS = 180  # Python starts about 50 times slower under callgrind


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def count(name: str, start: Callable[[list[str]], tuple[subprocess.Popen[bytes], str]], workdir: Path, *,
          token: str, tag: int, seconds: float) -> dict[str, Any]:
    """Instructions per request of the server ``start(under)`` starts, under ``seconds`` of wrk load."""
    out = workdir / f"callgrind-{name}.out"
    proc, url = start(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"])
    try:
        load.run_wrk(url, token=token, tag=tag, seconds=2)  # warm-up, not counted
        control("--instr=on", proc.pid)
        result = load.run_wrk(url, token=token, tag=tag + 1, seconds=seconds)
        control("--instr=off", proc.pid)
        control("--dump", proc.pid)
    finally:
        procs.stop(proc)
    instructions = sum(_totals(part) for part in workdir.glob(f"{out.name}*"))
    return {
        "requests": result["requests"],
        "statuses": result["statuses"],
        "instructions": instructions,
        "per_request": round(instructions / max(1, result["requests"])),
    }


def control(option: str, pid: int) -> None:
    """Tell the callgrind run of ``pid`` to switch counting on or off (``--instr=on|off``) or to dump."""
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=60)


def _totals(dump: Path) -> int:
    """The instructions counted in one callgrind dump (its ``totals:`` line; ``summary:`` is 0 in a
    dump asked for with ``--dump``)."""
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0
