"""Resident memory and CPU time of a command's whole process tree, read from /proc (Linux), for the benches.

/proc rather than getrusage: worker processes are children of multiprocessing's fork server, which nobody
waits for, so RUSAGE_CHILDREN would miss them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

CLOCK = os.sysconf("SC_CLK_TCK")


class Usage(NamedTuple):
    rss: int  # resident bytes now
    hwm: int  # the process' peak resident bytes so far
    anon: int  # anonymous resident bytes now (heap, not file pages)
    cpu: float  # CPU seconds, user + system


def process_tree(root_pid: int) -> dict[int, Usage]:
    """{pid: Usage} of `root_pid` and all its descendants; a process that ends meanwhile is left out."""
    tree, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            times = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            todo += [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                     for child in (task / "children").read_text().split()]
        except OSError:  # it ended meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss, hwm, anon = (int(fields.get(key, "0 kB").split()[0]) * 1024 for key in ("VmRSS", "VmHWM", "RssAnon"))
        tree[pid] = Usage(rss, hwm, anon, (int(times[11]) + int(times[12])) / CLOCK)  # utime + stime
    return tree
