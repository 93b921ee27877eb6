"""Build kit/assets/competition_shape.json, the real data set's shape that `kit synth --like-competition` copies.

Run from the repository root:

    python kit/assets/make_competition_shape.py [IDS_CSV]

IDS_CSV (default samples/asl-signs/train_ids_folds5.csv) lists every one of the 94,477 real asl-signs
train sequences as `participant_id,sequence_id,fold`, in train.csv order. The asset keeps only what synth needs:
how many sequences each of the 21 real participants recorded (no sequence ids, no signs), so that the kit
never reads samples/ at run time (the wheel does not ship it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "samples" / "asl-signs" / "train_ids_folds5.csv"
OUT = Path(__file__).resolve().parent / "competition_shape.json"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    ids = pd.read_csv(source)
    counts = ids.groupby("participant_id").size()
    shape = {
        "source": "participant_id column of the real asl-signs train.csv (94,477 rows), counted by "
                  f"kit/assets/make_competition_shape.py from {source.name}",
        "sequences": int(counts.sum()),
        "sequences_per_participant": {str(p): int(n) for p, n in counts.items()},
    }
    OUT.write_text(json.dumps(shape, indent=1) + "\n")
    print(f"wrote {OUT}: {len(counts)} participants, {counts.sum():,} sequences")


if __name__ == "__main__":
    main()
