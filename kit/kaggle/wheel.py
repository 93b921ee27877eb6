"""The running kit as a wheel, byte for byte the same for the same code, named by what it holds.

`kit kaggle train` ships the kit to Kaggle as a wheel in a private dataset and installs it there offline. The
wheel is built from the `kit` package that is running now (an editable checkout or an installed wheel alike, with
no build tool and no network), with fixed timestamps and a fixed order, so that unchanged code gives the same
bytes. Its version carries a content hash (`0.1.0+k1a2b3c4d5e6`), so the file name alone says whether Kaggle already
has this code.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import kit

PACKAGE_DIR = Path(kit.__file__).resolve().parent
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build time leaks into the bytes


@dataclass(frozen=True)
class Wheel:
    name: str  # the file name, e.g. kit-0.1.0+k1a2b3c4d5e6-py3-none-any.whl
    data: bytes
    requires: tuple[str, ...]  # Requires-Dist lines without extras markers

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def package_files(root: Path = PACKAGE_DIR) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every file of the package, sorted; caches and compiled files left out."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root.parent)
        if path.is_dir() or SKIP_DIRS & set(rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        out.append((rel.as_posix(), path.read_bytes()))
    return out


def base_version() -> tuple[str, tuple[str, ...]]:
    """The kit's version without a local label, and its requirements (no extras), from its installed metadata."""
    try:
        dist = importlib.metadata.distribution("kit")
        version, requires = dist.version, tuple(dist.requires or ())
    except importlib.metadata.PackageNotFoundError:
        version, requires = kit.__version__ if hasattr(kit, "__version__") else "0.0.0", ()
    return version.split("+")[0], tuple(r for r in requires if "extra ==" not in r)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(root: Path = PACKAGE_DIR) -> Wheel:
    """The wheel of the package at `root`; see the module docstring."""
    files = package_files(root)
    version, requires = base_version()
    content = hashlib.sha256()
    for name, data in files:
        content.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    for line in requires:
        content.update(line.encode() + b"\n")
    version = f"{version}+k{content.hexdigest()[:12]}"
    info = f"kit-{version}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", "Name: kit", f"Version: {version}",
                          *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    wheel_meta = "Wheel-Version: 1.0\nGenerator: kit.kaggle.wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entry_points = "[console_scripts]\nkit = kit.cli:app\n"
    files += [(f"{info}/METADATA", metadata.encode()), (f"{info}/WHEEL", wheel_meta.encode()),
              (f"{info}/entry_points.txt", entry_points.encode())]
    record = "\n".join([_record_line(n, d) for n, d in files] + [f"{info}/RECORD,,"]) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files + [(f"{info}/RECORD", record.encode())]:
            entry = zipfile.ZipInfo(name, date_time=EPOCH)
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return Wheel(f"kit-{version}-py3-none-any.whl", out.getvalue(), requires)
