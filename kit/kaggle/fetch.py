"""kit fetch: the asl-signs data through the real Kaggle client, resumable, verified and unpacked safely.

Every download lands in DEST/.partial first. The client resumes a cut download there with an HTTP Range request
guarded by the file's ETag (If-Range), both within a run and on the next run (its `.kaggle-partial` marker). A file
moves into its place only once complete and verified, so `kit prepare` never sees half a file, and files already in
place are never rewritten (without --force), so `kit prepare` picks up only the new ones.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kit.kaggle import api as kaggle_api
from kit.errors import BadFile, KitError
from kit.progress import say, track

TRAIN_CSV = "train.csv"
SIGN_MAP = "sign_to_prediction_index_map.json"
TRAIN_HEADER = ["path", "participant_id", "sequence_id", "sign"]
STAGING = ".partial"  # downloads wait here until verified
STATE = ".kit-fetch.json"  # what the last archive fetch unpacked (the archive itself is removed)
PARTIAL_MARKER = ".kaggle-partial"  # the client's sidecar: present while a download is incomplete


@dataclass
class FetchReport:
    dest: Path
    new: int  # files put in place by this run
    kept: int  # files that were already in place
    nbytes: int  # bytes put in place by this run
    participants: list[int] | None

    def __str__(self) -> str:
        which = f"participants {','.join(map(str, self.participants))}" if self.participants else "all participants"
        lines = [
            f"{self.dest}: {self.new} new files ({self.nbytes / 2**20:.1f} MB), {self.kept} already here, for {which}",
            f"Next: kit prepare --data {self.dest}"
            + (f" --participants {','.join(map(str, self.participants))}" if self.participants else ""),
        ]
        return "\n".join(lines)


def fetch_competition(
    dest: Path,
    participants: Sequence[int] | None = None,
    force: bool = False,
    *,
    retry_delays: Sequence[float] = kaggle_api.RETRY_DELAYS,
) -> FetchReport:
    """Download train.csv, the sign map and the landmark files (only `participants`' if given) into `dest`."""
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    dest.mkdir(parents=True, exist_ok=True)
    fetcher = _Fetcher(api, creds, dest, force, retry_delays)
    if participants:
        report = fetcher.participants(sorted(set(participants)))
    else:
        report = fetcher.archive()
    remove_empty_dirs(dest / STAGING)
    return report


def remove_empty_dirs(root: Path) -> None:
    """Drop the staging folders that emptied out; a partial download (and its marker) keeps its folder."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def safe_relpath(name: str) -> PurePosixPath | str:
    """`name` as a relative path inside the destination, or the reason it is not one."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    path = PurePosixPath(name.replace("\\", "/"))
    if ".." in path.parts:
        return "climbs out of the destination with '..'"
    if not path.parts:
        return "has an empty name"
    return path


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    """Every entry, after refusing the whole archive if any one could write outside the destination."""
    entries = zf.infolist()
    for info in entries:
        problem = "is a symbolic link" if _is_link(info) else safe_relpath(info.filename)
        if isinstance(problem, str):
            raise BadFile(archive, f"entry {info.filename!r} {problem}; refusing to unpack anything from this archive")
    return entries


def extract_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    """Write one checked entry to `target` via a temporary name, renamed only once its CRC has checked out."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".kit-tmp")
    try:
        with zf.open(info) as src, tmp.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)  # ZipExtFile checks the CRC when the entry ends
    except zipfile.BadZipFile as err:
        tmp.unlink(missing_ok=True)
        raise BadFile(archive, f"entry {info.filename!r} is corrupt ({err}): run kit fetch --force") from None
    os.replace(tmp, target)


def unpack(archive: Path, dest: Path, force: bool = False) -> tuple[int, int, int]:
    """Extract `archive` into `dest` safely; returns (new files, files kept, bytes written).

    A file already in place with the entry's size is kept as it is, untouched: a re-run after an interrupted unpack
    does only the rest, and `kit prepare` sees only the new files.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        archive.unlink()
        raise BadFile(archive, f"not a complete zip archive ({err}); it was removed: run kit fetch again") from None
    new = kept = nbytes = 0
    with zf:
        for info in track(check_archive(zf, archive), f"unpacking {archive.name}"):
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not force and target.is_file() and target.stat().st_size == info.file_size:
                kept += 1
            else:
                extract_entry(zf, info, target, archive)
                new, nbytes = new + 1, nbytes + info.file_size
    return new, kept, nbytes


def verify(path: Path, name: str) -> None:
    """Cheap proof that a downloaded file is whole: the formats' own magic, header or syntax."""
    if name.endswith(".parquet"):
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
            f.seek(max(size - 4, 0))
            tail = f.read(4)
        if size < 12 or head != b"PAR1" or tail != b"PAR1":
            raise BadFile(path, f"not a complete parquet file ({size} bytes): run kit fetch again")
    elif name.endswith(".csv") and Path(name).name == TRAIN_CSV:
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header != TRAIN_HEADER:
            raise BadFile(path, f"header {header} is not {TRAIN_HEADER}: run kit fetch --force")
    elif name.endswith(".json"):
        try:
            json.loads(path.read_text())
        except ValueError as err:
            raise BadFile(path, f"not valid JSON ({err}): run kit fetch --force") from None


def landmark_paths(train_csv: Path, participants: Sequence[int]) -> list[str]:
    """The landmark files of `participants`, as train.csv lists them; an unknown participant is an error."""
    wanted, seen, paths = set(participants), set(), []
    with train_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            pid = int(row["participant_id"])
            seen.add(pid)
            if pid in wanted:
                paths.append(row["path"])
    missing = sorted(wanted - seen)
    if missing:
        known = ",".join(map(str, sorted(seen)))
        raise BadFile(train_csv, f"no sequences of participant(s) {missing}; participants here: {known}")
    return paths


class _Fetcher:
    """One fetch: the signed-in client, where files go, and how hard to retry."""

    def __init__(self, api: Any, creds: kaggle_api.Credentials, dest: Path, force: bool, delays: Sequence[float]):
        self.api, self.creds, self.dest, self.force, self.delays = api, creds, dest, force, delays

    def _call(self, fn, doing: str) -> None:
        kaggle_api.call(fn, doing, self.creds, on_403=kaggle_api.RULES_MESSAGE, delays=self.delays)

    def file(self, name: str) -> int:
        """Put competition file `name` in place; returns its size, or 0 if it was already there."""
        rel = safe_relpath(name)
        if isinstance(rel, str):
            raise KitError(f"Kaggle listed a file {name!r} that {rel}; refusing it")
        final = self.dest.joinpath(*rel.parts)
        if final.is_file() and not self.force:
            return 0
        stage = self.dest.joinpath(STAGING, *rel.parts[:-1])
        self._call(
            lambda: self.api.competition_download_file(
                kaggle_api.COMPETITION, name, path=str(stage), force=self.force, quiet=True
            ),
            f"downloading {name}",
        )
        landed = self._landed(stage, rel.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            if landed.name != rel.name:  # Kaggle zips some single files on the way: unwrap, safely
                self._unwrap(landed, rel.name, final)
            else:
                verify(landed, name)
                os.replace(landed, final)
        except BadFile:
            landed.unlink(missing_ok=True)  # a bad download must not pass for a finished one next time
            raise
        except zipfile.BadZipFile as err:
            landed.unlink(missing_ok=True)
            raise BadFile(landed, f"not a complete zip archive ({err}); it was removed: run kit fetch again") from None
        return final.stat().st_size

    def _landed(self, stage: Path, base: str) -> Path:
        # The client names the file after the download URL: the file itself, or the file zipped.
        for candidate in (stage / base, stage / f"{base}.zip"):
            if candidate.is_file() and not Path(f"{candidate}{PARTIAL_MARKER}").exists():
                return candidate
        raise KitError(f"the download of {base} left no complete file in {stage}: run kit fetch again")

    def _unwrap(self, zipped: Path, base: str, final: Path) -> None:
        with zipfile.ZipFile(zipped) as zf:
            entries = check_archive(zf, zipped)
            if [PurePosixPath(e.filename).name for e in entries] != [base]:
                raise BadFile(zipped, f"expected one entry {base}, found {[e.filename for e in entries]}")
            unzipped = zipped.with_name(base)
            extract_entry(zf, entries[0], unzipped, zipped)
        verify(unzipped, base)
        os.replace(unzipped, final)
        zipped.unlink()

    def index_files(self) -> tuple[int, int]:
        new = [self.file(name) for name in (TRAIN_CSV, SIGN_MAP)]
        return sum(1 for n in new if n), sum(new)

    def participants(self, participants: list[int]) -> FetchReport:
        new, nbytes = self.index_files()
        paths = landmark_paths(self.dest / TRAIN_CSV, participants)
        todo = [p for p in paths if self.force or not (self.dest / p).is_file()]
        for name in track(todo, f"landmark files of {len(participants)} participant(s)"):
            nbytes += self.file(name)
        return FetchReport(self.dest, new + len(todo), len(paths) - len(todo) + 2 - new, nbytes, participants)

    def archive(self) -> FetchReport:
        state_path = self.dest / STATE
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        if state.get("unpacked") and not self.force:
            say(f"{self.dest}: the whole archive was unpacked before (use --force to download it again)")
            return FetchReport(self.dest, 0, int(state.get("files", 0)), 0, None)
        stage = self.dest / STAGING
        self._call(
            lambda: self.api.competition_download_files(
                kaggle_api.COMPETITION, path=str(stage), force=self.force, quiet=False
            ),
            f"downloading the {kaggle_api.COMPETITION} archive",
        )
        archive = self._landed(stage, f"{kaggle_api.COMPETITION}.zip")
        new, kept, nbytes = unpack(archive, self.dest, self.force)
        for name in (TRAIN_CSV, SIGN_MAP):
            if not (self.dest / name).is_file():
                raise BadFile(archive, f"holds no {name}: this is not the {kaggle_api.COMPETITION} archive")
            verify(self.dest / name, name)
        archive.unlink()  # 40 GB twice is too much disk: the unpacked files are what the kit reads
        state_path.write_text(json.dumps({"unpacked": True, "files": new + kept}, indent=1))
        return FetchReport(self.dest, new, kept, nbytes, None)
