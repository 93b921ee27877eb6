"""Read one competition landmark file into a `[frames, 543, 3]` array, checking it is what it claims to be.

Speed matters here: `kit prepare` reads 94,477 of these files. So the reader asks pyarrow for the columns
it needs and nothing else (`row_id` and `frame`, the biggest and a redundant one, are never decoded), reads
`type` as its dictionary codes (a few bytes per frame instead of a string per row), converts with pyarrow
casts instead of per-row Python, and builds no DataFrame. Every check below is a vectorized compare.

Of the ~1.2 ms a typical file (35 frames) costs on one core, ~0.75 ms is pyarrow decompressing (snappy) and
decoding x, y and z, which any reader pays (pandas' read_parquet adds ~0.7 ms of its own); type and
landmark_index add ~0.1 ms, opening the file ~0.1 ms, the float16 conversion ~0.2 ms, the checks ~0.1 ms.
Arrays leave pyarrow as numpy views of its buffers, never through `to_numpy()`, `pa.array()` or
`pa.scalar()`: those import pandas (0.15 s and ~60 MB in every worker process) to look for pandas objects.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kit.errors import BadFile
from kit.data.landmarks import COLUMNS, N_LANDMARKS, TYPES, landmark_index_column

XYZ = ("x", "y", "z")
READ = ("type", "landmark_index") + XYZ
FLOAT16_MAX = 65504.0  # the cache stores float16; beyond this a coordinate would turn into inf

# What one frame's `type` (as a position in TYPES) and `landmark_index` columns must be, row by row.
_TYPE_NAMES = tuple(name for name, _ in TYPES)
# (Dtypes as the columns usually arrive - int32 dictionary codes, int16 indices - so compares need no casts.)
_FRAME_TYPES = np.repeat(np.arange(len(TYPES), dtype=np.int32), [count for _, count in TYPES])
_FRAME_INDEX = np.asarray(landmark_index_column(), dtype=np.int16)
# NaN is the competition's own mark of a landmark MediaPipe did not find, in any group: hands are missing in most
# frames, and the face is missing too in some. Checked against the real samples (samples/asl-signs: 3 of
# its 10 files have frames whose 468 face points are all NaN) and a public sample of 747 real files (124 of 23,435
# frames without a face, in 27 files; pose never missing there). The scorer hands such frames to the model as they
# are, so a NaN is data, never damage: only values no tracker writes (inf, |x| beyond float16) are refused.
_REDOWNLOAD = "download it again"


def read_landmarks(path: str | os.PathLike, dtype: type = np.float32) -> np.ndarray:
    """The landmarks of one file as `[frames, 543, 3]` (`dtype`, NaN where MediaPipe found no landmark: a hand out
    of view, a frame without a face).

    Raises BadFile(path, problem) when the file is empty, unreadable, has the wrong columns or dtypes,
    a row count that is not a whole number of frames, rows out of the competition's order, or coordinates
    that are infinite or too large to be normalized image coordinates.
    """
    table = _read_table(Path(path))
    n_frames = table.num_rows // N_LANDMARKS
    _check_order(path, table, n_frames)
    frames = _coordinates(table, dtype).reshape(n_frames, N_LANDMARKS, 3)
    _check_values(path, frames)
    return frames


def _read_table(path: Path) -> pa.Table:
    """The columns that reading and checking need, after the checks that need only the footer."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise BadFile(path, f"file not found: {_REDOWNLOAD}") from None
    if size == 0:
        raise BadFile(path, f"empty file (0 bytes): {_REDOWNLOAD}")
    try:
        # An open file rather than a path: pyarrow would otherwise resolve a filesystem for every file.
        with pa.OSFile(os.fspath(path)) as source:
            parquet = pq.ParquetFile(source, read_dictionary=["type"])
            _check_schema(path, parquet.schema_arrow)
            _check_rows(path, parquet.metadata.num_rows)
            return parquet.read(columns=list(READ), use_threads=False)
    except (pa.ArrowException, OSError) as err:  # truncated: ArrowInvalid; corrupt pages: OSError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadFile(path, f"not a readable parquet file, probably truncated or corrupt: {_REDOWNLOAD} "
                            f"(pyarrow says: {reason})") from None


def _is_text(column_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    return pa.types.is_string(column_type) or pa.types.is_large_string(column_type)


# Kinds rather than exact types: other writers' int32 ids or float32 coordinates read just as well.
_KINDS = {"frame": (pa.types.is_integer, "an integer"), "row_id": (_is_text, "text"), "type": (_is_text, "text"),
          "landmark_index": (pa.types.is_integer, "an integer"),
          **{axis: (pa.types.is_floating, "floating point (float64)") for axis in XYZ}}


def _check_schema(path, schema: pa.Schema) -> None:
    names = set(schema.names)
    missing = [name for name in COLUMNS if name not in names]
    if missing:
        raise BadFile(path, f"missing column(s) {','.join(missing)}: a competition landmark file has the "
                            f"columns {','.join(COLUMNS)}")
    for name, (ok, expected) in _KINDS.items():
        column_type = schema.field(name).type
        if not ok(column_type):
            raise BadFile(path, f"column {name} is {column_type}, expected {expected} as in the competition files")


def _check_rows(path, n_rows: int) -> None:
    if n_rows == 0:
        raise BadFile(path, f"no rows (0 frames): {_REDOWNLOAD}")
    if n_rows % N_LANDMARKS:
        raise BadFile(path, f"{n_rows} rows is not a whole number of frames of {N_LANDMARKS} landmarks: "
                            f"the file is cut short or not MediaPipe Holistic output; {_REDOWNLOAD}")


def _check_order(path, table: pa.Table, n_frames: int) -> None:
    """Every frame lists face, left_hand, pose, right_hand, each by landmark_index 0, 1, 2, ..."""
    types = _type_codes(path, table.column("type")).reshape(n_frames, N_LANDMARKS)
    index_column = table.column("landmark_index")
    if index_column.null_count:
        raise BadFile(path, f"column landmark_index has {index_column.null_count} empty values: {_REDOWNLOAD}")
    index = _numpy(index_column).reshape(n_frames, N_LANDMARKS)
    if (types == _FRAME_TYPES).all() and (index == _FRAME_INDEX).all():
        return
    frame, row = np.argwhere((types != _FRAME_TYPES) | (index != _FRAME_INDEX))[0]
    found = f"{_TYPE_NAMES[types[frame, row]] if types[frame, row] >= 0 else 'unknown type'} {index[frame, row]}"
    expected = f"{_TYPE_NAMES[_FRAME_TYPES[row]]} {_FRAME_INDEX[row]}"
    raise BadFile(path, f"row {frame * N_LANDMARKS + row} (frame {frame}) is {found} where {expected} belongs: "
                        "every frame must list face (468), left_hand (21), pose (33), right_hand (21) "
                        "landmarks in index order")


def _type_codes(path, column: pa.ChunkedArray) -> np.ndarray:
    """The `type` column as positions in TYPES (-1 for a name that is not a landmark type)."""
    if column.null_count:
        raise BadFile(path, f"column type has {column.null_count} empty values: {_REDOWNLOAD}")
    codes = []
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):  # a writer that did not dictionary-encode: still fine
            chunk = chunk.dictionary_encode()
        names = tuple(chunk.dictionary.to_pylist())
        if names == _TYPE_NAMES:  # the usual case: codes are already TYPES positions
            codes.append(_view(chunk.indices))
            continue
        # Translate the chunk's own dictionary to TYPES positions, then look every row up through it.
        lookup = np.array([_TYPE_NAMES.index(v) if v in _TYPE_NAMES else -1 for v in names], dtype=np.int8)
        codes.append(lookup[_view(chunk.indices)])
    return codes[0] if len(codes) == 1 else np.concatenate(codes)


def _coordinates(table: pa.Table, dtype: type) -> np.ndarray:
    """x, y, z side by side as `[rows, 3]`; parquet nulls (a missing hand or face) become NaN."""
    arrow_type = pa.from_numpy_dtype(np.dtype(dtype))
    out = np.empty((table.num_rows, 3), dtype=dtype)
    for j, axis in enumerate(XYZ):
        column = table.column(axis)
        if column.null_count:  # filled before the cast: pyarrow < 19 (Kaggle's images: 18.1) has no float16 fill_null
            column = pc.fill_null(column, _arrow_nan(column.type))
        # Arrow's cast rounds to nearest like numpy's astype, and is several times faster to float16.
        out[:, j] = _numpy(pc.cast(column, arrow_type))
    return out


@lru_cache(maxsize=None)
def _arrow_nan(arrow_type: pa.DataType) -> pa.Scalar:
    """NaN as a scalar of `arrow_type` (made from buffers: pa.scalar would import pandas)."""
    nan = pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(np.array([np.nan]).tobytes())])
    return pc.cast(nan, arrow_type)[0]


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A column of numbers without nulls as a numpy array: a view of its buffer when it has one chunk."""
    if column.num_chunks == 1:
        return _view(column.chunk(0))
    return np.concatenate([_view(chunk) for chunk in column.chunks])


def _view(array: pa.Array) -> np.ndarray:
    """The values of a fixed-width numeric array (its null slots hold anything) as a numpy view."""
    dtype = np.dtype(array.type.to_pandas_dtype())  # a numpy type: no pandas involved
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _check_values(path, frames: np.ndarray) -> None:
    """Refuse values no tracker writes. Missing landmarks (NaN), in any group and any frame, are valid data."""
    huge = _is_huge(frames)
    if huge.any():
        frame = int(np.argwhere(huge)[0][0])
        raise BadFile(path, f"coordinates beyond ±{FLOAT16_MAX:g} or infinite in frame {frame}: landmarks are "
                            f"normalized image coordinates near 0..1, so the file is damaged; {_REDOWNLOAD}")


# numpy has no fast float16 arithmetic (abs on float16 runs ~6x slower than on float32), so float16 arrays are
# tested on their bits: exponent all ones with a zero mantissa is inf (with any other mantissa, NaN).
def _is_huge(a: np.ndarray) -> np.ndarray:
    """|value| > 65504 or infinite (a float16 cannot hold a finite value beyond 65504)."""
    if a.dtype == np.float16:
        return (a.view(np.uint16) & 0x7FFF) == 0x7C00
    return np.abs(a) > FLOAT16_MAX  # NaN compares false
