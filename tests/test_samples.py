"""The real competition files in the repository (samples/asl-signs): what they are, that they are unchanged, and
that they are credited as their licence asks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import ROOT, SAMPLES

OURS = {"LICENSE.md", "README.md", "SHA256SUMS"}  # written for this repository; every other file is the data's


def listed() -> dict[str, str]:
    """path -> sha256 from SHA256SUMS (sha256sum's format, so `sha256sum -c SHA256SUMS` checks it too)."""
    rows = (line.split(maxsplit=1) for line in (SAMPLES / "SHA256SUMS").read_text().splitlines() if line.strip())
    return {path.strip(): digest for digest, path in rows}


def test_every_data_file_is_listed_and_unchanged():
    """A file edited, added or dropped here fails instead of passing as the competition's."""
    files = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file()} - OURS
    sums = listed()
    assert files == set(sums), f"in the folder, not in SHA256SUMS: {sorted(files - set(sums))}; " \
                               f"in SHA256SUMS, not in the folder: {sorted(set(sums) - files)}"
    changed = [p for p, digest in sums.items() if hashlib.sha256((SAMPLES / p).read_bytes()).hexdigest() != digest]
    assert not changed, f"changed since they were copied from the competition's data: {changed}"
    assert sum(p.endswith(".parquet") for p in files) == 10


def test_the_licence_names_source_licence_credit_and_the_note_on_identification():
    licence = " ".join((SAMPLES / "LICENSE.md").read_text().split())
    for needed in ("asl-signs", "Deaf Professional Arts Network", "Georgia Institute of Technology", "CC-BY 4.0",
                   "https://creativecommons.org/licenses/by/4.0/", "unchanged",
                   "Landmark data should not be used to identify or re-identify an individual."):
        assert needed in licence, needed


def test_the_kits_sign_map_is_the_competitions():
    """kit/assets ships the competition's sign map (the output order of every submission): the same bytes."""
    assert (ROOT / "kit" / "assets" / "sign_to_prediction_index_map.json").read_bytes() == \
        (SAMPLES / "sign_to_prediction_index_map.json").read_bytes()


def test_samples_csv_names_the_files_that_are_here():
    import pandas as pd

    rows = pd.read_csv(SAMPLES / "samples.csv")
    assert len(rows) == 10 and all((SAMPLES / Path(p)).is_file() for p in rows["path"])
