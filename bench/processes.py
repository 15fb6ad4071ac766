"""What a process on this machine has used, from /proc: CPU time and peak memory (for the benchmarks)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process has used so far; OSError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM); OSError once it is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class CpuUse:
    """The cores each named process uses from its making until `cores()`; nan for one with no pid
    here (a broker on another machine)."""

    def __init__(self, pids: dict[str, int | None]):
        self.pids = pids
        self.before = {name: self._seconds(pid) for name, pid in pids.items()}
        self.started = time.perf_counter()

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        return {name: (self._seconds(pid) - self.before[name]) / elapsed for name, pid in self.pids.items()}

    @staticmethod
    def _seconds(pid: int | None) -> float:
        return cpu_seconds(pid) if pid is not None else float("nan")
