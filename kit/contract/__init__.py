"""The competition's contract: a run exported to one TFLite graph, checked the way Kaggle's scorer will run it.

tflite (the contract: `[frames, 543, 3]` float32 in, one output per sign; its runner) and opcheck (ops and op versions
the scorer's runtime has) -> gates (every reason a submission failed, as checks) -> export (preprocessing and the fold
models in one graph, gated); evaluate (scores any model as the scorer does), predict (the top signs in one
recording), quality (what a run's export is worth before it goes up). Imports training (to rebuild fold models),
seeing, capture, preprocessing, data and the shared core; the rule is in ARCHITECTURE.md and tests/test_layout.py.
"""
