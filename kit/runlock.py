"""One writer per folder: the lock every command that writes a cache or a run takes on it, and what readers see of it.

`kit prepare` takes it on its cache; `kit train` (folds, --resume, --full, --member; --sweep on each of its runs),
`kit cv` and `kit kaggle train` / `kit kaggle cancel` on the run; `kit export` on its output folder; `kit demo` on
its folder. A second writer of the same folder is refused in one line that names the command holding it, its PID and
start time, and touches nothing. Readers (`kit runs`, `kit report`, `kit kaggle status`, `kit evaluate`) never take the lock: they read
who holds it (`holder`) and say that the folder is still being written.

The lock is flock(2) on FOLDER/.lock, which holds the holder's record (JSON: pid, command, command line, start
time, host). The operating system drops a flock when its process dies, however it dies (kill -9, a crash, a power
cut), so a dead writer never locks a folder for ever; its record stays in the file, and the next writer says that
it takes the folder over. A writer that ends cleanly empties the file. A process that holds a folder takes it again
for free (kit train --sweep -> kit train -> kit cv), and lets go when the outermost holder ends.

Without flock (Windows) nothing is locked: two writers of one folder there are the user's to avoid.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
from kit.progress import say

LOCK = ".lock"  # kit prepare's cache lock had this name already: an older cache's empty .lock reads as no holder
_held: dict[str, list] = {}  # real path of a folder this process holds -> [file descriptor, depth]


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a folder's lock, as its .lock file says."""
    pid: int
    command: str  # "kit train", "kit prepare", ...
    line: str  # the whole command line
    started: float  # the process's start, seconds since the epoch
    host: str

    def __str__(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"{self.command} (PID {self.pid}{where}, started {when}: {self.line})"

    def alive(self) -> bool:
        """Whether the process is still running. Another host's cannot be asked: taken as alive. A PID that a new
        process took over since (its start time differs) is not the holder."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            pass
        start = _process_start(self.pid)
        return start is None or abs(start - self.started) < 2.0


@contextlib.contextmanager
def writing(folder: str | os.PathLike, command: str, what: str = "folder") -> Iterator[None]:
    """Hold `folder` (created if missing) for `command` ("kit train") while the block runs; a second writer is
    refused with a KitError naming `what` ("run", "cache") and the holder. A folder this call created and left
    holding nothing but the lock (a command refused on its options) is removed again."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:  # nested: this process holds it already
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KitError(f"{folder}: cannot create this folder ({err.strerror or err}): give another one") from None
    fd = _acquire(folder, command, what, fcntl)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        os.ftruncate(fd, 0)  # a clean end: no record, so the next writer takes nothing over
        with contextlib.suppress(OSError):  # the block may have removed the folder itself (kit demo replaces its own)
            if created and [p.name for p in folder.iterdir()] == [LOCK]:
                (folder / LOCK).unlink()
                folder.rmdir()
        os.close(fd)  # lets go of the flock


def _acquire(folder: Path, command: str, what: str, fcntl) -> int:
    """The open, flocked .lock of `folder`, holding this process's record."""
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # never truncated before the flock: it names the holder
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _parse(_read(fd))
            os.close(fd)
            raise _refusal(folder, found, what) from None
        except OSError as err:  # a file system without flock (some network ones): said, not silent
            say(f"warning: {path}: cannot lock ({err.strerror or err}); nothing stops a second writer here")
            break
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was removed (its folder given up) between our open and our flock: again
    left = _parse(_read(fd))
    if left is not None:  # the last writer never emptied it: it was killed, or the machine stopped
        say(f"{folder}: {left} did not finish (killed, or the machine stopped); taking this {what} over")
    record = json.dumps({"pid": os.getpid(), "command": command, "line": _command_line(),
                         "started": _own_start(os.getpid()), "host": socket.gethostname()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode(), 0)
    return fd


def _refusal(folder: Path, found: Holder | None, what: str) -> KitError:
    return KitError(f"{folder}: {found or 'another kit command'} is writing this {what}: wait for it to finish"
                    + (f", or stop it (kill {found.pid})" if found else ""))


def check_free(folder: str | os.PathLike, what: str = "folder") -> None:
    """Refuse now, as `writing` will, when another live process writes `folder`: for a command that has seconds of
    imports (TensorFlow) to do before it takes the lock. Only a shortcut: `writing` decides."""
    found = holder(folder)
    if found is not None:
        raise _refusal(Path(folder), found, what)


def holder(folder: str | os.PathLike) -> Holder | None:
    """The live process of another command writing `folder` now, or None: for readers, which never lock. This
    process's own hold is not reported (a report written at the end of training is not "still being written")."""
    try:
        with open(Path(folder) / LOCK, "rb") as f:
            found = _parse(f.read())
    except OSError:
        return None
    if found is None or (found.pid == os.getpid() and found.host == socket.gethostname()) or not found.alive():
        return None
    return found


def held_here(folder: str | os.PathLike) -> bool:
    """Whether this process holds `folder`'s lock now."""
    return os.path.realpath(folder) in _held


def _read(fd: int) -> bytes:
    return os.pread(fd, 4096, 0)


def _parse(data: bytes) -> Holder | None:
    """A .lock's record; None for an empty file (a clean end) or one that is not a record (written by no kit)."""
    try:
        raw = json.loads(data.decode())
        return Holder(int(raw["pid"]), str(raw["command"]), str(raw.get("line", "")), float(raw["started"]),
                      str(raw.get("host", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    line = shlex.join(["kit" if name in ("kit", "__main__.py") else name, *sys.argv[1:]])
    return line if len(line) <= 300 else line[:299] + "…"


@functools.lru_cache(maxsize=None)
def _own_start(pid: int) -> float:
    """This process's start (by PID, so a forked child has its own), where there is no /proc the time asked."""
    return _process_start(pid) or time.time()


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc; None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command's name
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


@functools.lru_cache(maxsize=1)
def _boot_time() -> float:
    return next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime"))
