"""Fold assignment: GroupKFold by participant, because the test set's signers are never seen in training."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold

from kit.errors import KitError


def assign_folds(participant_ids: np.ndarray, n_folds: int) -> np.ndarray:
    """Return the fold (0..n_folds-1) of every sequence; all sequences of a participant share one fold.

    Deterministic: scikit-learn's GroupKFold balances folds by group size without randomness, so the same
    participants always give the same folds on every machine.
    """
    participant_ids = np.asarray(participant_ids)
    n_groups = len(np.unique(participant_ids))
    if n_folds < 2:
        raise KitError(f"--folds must be at least 2, got {n_folds}")
    if n_groups < n_folds:
        raise KitError(
            f"{n_folds} folds need at least {n_folds} participants, the cache has {n_groups}: "
            f"use --folds {max(2, n_groups)} or prepare more signers"
        )
    folds = np.empty(len(participant_ids), dtype=np.int32)
    splitter = GroupKFold(n_splits=n_folds)
    for fold, (_, val_idx) in enumerate(splitter.split(participant_ids, groups=participant_ids)):
        folds[val_idx] = fold
    return folds
