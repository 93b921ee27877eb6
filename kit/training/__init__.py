"""Training: the tf.data pipeline over the cache, GroupKFold folds, full fits on every signer, sweeps, resumes.

pipeline (tf.data: shuffle, augment, the shared preprocessing, batch) -> train (folds: checkpoints, out-of-fold
predictions, metrics; its optimizers and awp: the 1st place's RAdam, Lookahead and weight perturbation) -> cv
(the summary of whatever folds a run holds); full (final fits on every signer, built on train), resume (continues
either kind), sweep (a grid of runs); devices and distribute (what training runs on).
Imports models, seeing (reports, tracking), preprocessing, data and the shared core; the rule is in ARCHITECTURE.md
and tests/test_layout.py.
"""
