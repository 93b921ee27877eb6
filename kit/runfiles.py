"""Reading the files a run holds (history, metrics, config, state, out-of-fold predictions), so that a damaged one
is one line naming the file and the fix, never a traceback.

A file is damaged when a write was cut short (a kill, a power cut: truncated, or NUL bytes where the file system
had reserved room it never filled), when two writers wrote it at different offsets (NUL runs between their
lines), or when something other than the kit wrote it. The fix depends on the file: the caller says it (e.g. "kit
train --resume RUN re-trains fold 3 from its backup", "delete RUN/fold3 ..."), and only that file's piece of the
run is affected. Used by training (kit.training), the report and runs tables (kit.seeing), export and Kaggle.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from kit.errors import KitError


class Damaged(KitError):
    """A run file that is not as the kit wrote it; the message names the file, what is wrong and the fix."""

    def __init__(self, path: Path, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"{path}: damaged ({problem}): {fix}")


def problem_of(data: bytes) -> str | None:
    """What makes `data` unreadable as text the kit wrote, or None: NUL bytes, or bytes that are not UTF-8."""
    nul = b"\0"
    if nul in data:
        return f"{data.count(nul)} NUL bytes from byte {data.index(nul)}: a write cut short, or two writers"
    try:
        data.decode()
    except UnicodeDecodeError as err:
        return f"not text at byte {err.start}"
    return None


def read_json(path: Path, fix: str) -> dict:
    """The JSON object in `path` (a missing file raises FileNotFoundError, for the caller to decide); a damaged
    one raises Damaged with `fix`."""
    path = Path(path)
    data = path.read_bytes()
    problem = problem_of(data)
    if problem is None:
        try:
            value = json.loads(data)
        except ValueError as err:
            problem = "empty" if not data.strip() else f"cut short or not JSON: {err.msg}, line {err.lineno}"
        else:
            if isinstance(value, dict):
                return value
            problem = f"a JSON {type(value).__name__}, not the object the kit writes"
    raise Damaged(path, problem, fix)


def read_history(path: Path, fix: str, rows: int | None = None) -> dict[str, list[float]]:
    """history.csv (Keras' CSVLogger: a header, then one row of numbers per epoch) as columns of floats; only its
    first `rows` epochs when given (the ones a backup vouches for: a kill may leave a later row half written).
    Every row must have every column as a number (NaN allowed: an epoch Keras logged as nan); else Damaged."""
    path = Path(path)
    data = path.read_bytes()
    problem = problem_of(data)
    if problem is None:
        lines = data.decode().splitlines()
        if not lines:
            problem = "empty, not even its header"
        else:
            table = list(csv.reader(io.StringIO("\n".join(lines if rows is None else lines[: 1 + rows]))))
            header, body = table[0], table[1:]
            if rows is not None and len(body) < rows:
                problem = f"{len(body)} epochs, but its backup has {rows}"
            for number, row in enumerate(body, 2):
                if problem:
                    break
                if len(row) != len(header):
                    problem = f"line {number} has {len(row)} values for {len(header)} columns"
                    break
                try:
                    list(map(_number, row))
                except ValueError:
                    problem = f"line {number} holds something other than numbers: {','.join(row)[:40]!r}"
            if problem is None:
                return {key: [_number(r[i]) for r in body] for i, key in enumerate(header)}
    raise Damaged(path, problem, fix)


def _number(text: str) -> float:
    """A history value; NA or nothing (Keras' CSVLogger writes NA in the val_ columns of a full fit) is NaN."""
    return float("nan") if text in ("", "NA") else float(text)


def write_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a temporary file renamed over it): a kill never leaves it half written."""
    import os

    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def retrain_fix(member_dir: Path) -> str:
    """The fix for a damaged file of a fold or full fit that no backup can restore: train that one again."""
    member_dir = Path(member_dir)
    keep = "" if member_dir.name.startswith("fold") else " but its config.json"  # a full fit's config: its seed
    return (f"delete {member_dir}{keep}, then kit train --resume {member_dir.parent} trains {member_dir.name} again "
            "(the rest of the run is kept)")


def read_metrics(member_dir: Path) -> dict:
    """A finished fold's or full fit's metrics.json; a fold's holds its val_accuracy (a number). Damaged: Damaged."""
    path = Path(member_dir) / "metrics.json"
    metrics = read_json(path, retrain_fix(member_dir))
    if Path(member_dir).name.startswith("fold") and metrics.get("validated", True) and not isinstance(
            metrics.get("val_accuracy"), (int, float)):
        raise Damaged(path, "no val_accuracy in it", retrain_fix(member_dir))
    return metrics


def write_history(path: Path, rows: list[dict]) -> None:
    """history.csv from the epochs' logs a backup keeps ({"epoch": 0, "loss": ...}), as Keras' CSVLogger writes it:
    epoch, then the logs' keys sorted."""
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    lines = [",".join(["epoch", *keys])]
    lines += [",".join([str(row["epoch"]), *(repr(float(row.get(key, "nan"))) for key in keys)]) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def backup_state(member_dir: Path) -> dict | None:
    """A fold's or full fit's backup/state.json (kit.training.train.EpochBackup), None without one."""
    path = Path(member_dir) / "backup" / "state.json"
    if not path.is_file():
        return None
    state = read_json(path, retrain_fix(member_dir))
    if not isinstance(state.get("epoch"), int) or not isinstance(state.get("weights"), str):
        raise Damaged(path, "no epoch or weights named in it", retrain_fix(member_dir))
    return state


def member_fix(member_dir: Path) -> str:
    """The fix for a damaged file of a fold or full fit: resume from its backup when one keeps every epoch's logs
    (history.csv is rewritten from them), else train that one again; the rest of the run is kept either way."""
    try:
        state = backup_state(member_dir)
    except Damaged:
        state = None
    if state and len(state.get("history", [])) == state["epoch"]:
        return (f"kit train --resume {Path(member_dir).parent} re-trains {Path(member_dir).name} from its backup "
                f"(epoch {state['epoch']})")
    return retrain_fix(member_dir)
