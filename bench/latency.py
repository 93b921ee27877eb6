"""Latency and size of the default 3-model ensemble against the competition's limits (100 ms, 40 MB).

Builds three fold models of the default config (random weights: latency does not depend on their values),
exports them in float32 and float16 through `kit export`, and prints what the export's gates measured with
`ai_edge_litert` on one thread over 50 sequences of real lengths (1..500 frames): mean and p95 per sequence,
with the XNNPACK delegate and with plain builtin kernels, as ratios of the limits.
Targets on this machine: mean <= 20 ms and size <= 20 MB.

    python bench/latency.py [--model llama_small] [--max-len 64] [--recipe mlp80]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

TARGET_MS, TARGET_MB = 20.0, 20.0


def build_run(run_dir: Path, base, model: str, max_len: int, n_models: int = 3) -> None:
    import dataclasses

    import keras

    from kit.train import build_model

    for k in range(n_models):
        keras.utils.set_random_seed(k)
        cfg = dataclasses.replace(base, preprocess=dataclasses.replace(base.preprocess, max_len=max_len),
                                  model=dataclasses.replace(base.model, name=model))
        fold = run_dir / f"fold{k}"
        fold.mkdir(parents=True)
        cfg.save(fold / "config.json")
        build_model(cfg).save_weights(fold / "model.weights.h5")
        (fold / "metrics.json").write_text(json.dumps({"val_accuracy": 1.0 - k / 10}))


def main() -> None:
    from kit.config import Config, recipe
    from kit.export import export
    from kit.gates import LATENCY_LIMIT_MS, SIZE_LIMIT_MB

    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=defaults.model.name)
    parser.add_argument("--max-len", type=int, default=defaults.preprocess.max_len)
    parser.add_argument("--recipe", help="take model and feature options from a recipe (e.g. mlp80)")
    args = parser.parse_args()
    base = recipe(args.recipe) if args.recipe else defaults
    model = base.model.name if args.recipe and args.model == defaults.model.name else args.model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        build_run(run, base, model, args.max_len)
        for fp16 in (False, True):
            result = export(run, out_dir=Path(tmp) / f"export_fp{16 if fp16 else 32}", top=3, fp16=fp16)
            gates = {g.name: g.data for g in result.gates}
            rows.append((fp16, result.size_bytes / 1e6, gates["latency"], gates["parity"]["max_abs_diff"]))

    features = f" ({args.recipe} features)" if args.recipe else ""
    print(f"\n3 x {model}{features}, max_len {args.max_len}; "
          f"limits {LATENCY_LIMIT_MS:.0f} ms and {SIZE_LIMIT_MB:.0f} MB; "
          f"targets {TARGET_MS:.0f} ms and {TARGET_MB:.0f} MB")
    print(f"{'weights':8} {'size MB':>8} {'/limit':>7} {'runtime':8} {'mean ms':>8} {'p95 ms':>8} {'/limit':>7} "
          f"{'parity':>8}  target")
    for fp16, mb, latency, parity in rows:
        for runtime in ("xnnpack", "builtin"):
            t = latency[runtime]
            met = mb <= TARGET_MB and t["mean_ms"] <= TARGET_MS
            print(f"{'float16' if fp16 else 'float32':8} {mb:8.2f} {mb / SIZE_LIMIT_MB:7.3f} {runtime:8} "
                  f"{t['mean_ms']:8.2f} {t['p95_ms']:8.2f} {t['mean_ms'] / LATENCY_LIMIT_MS:7.3f} {parity:8.1e}  "
                  f"{'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
