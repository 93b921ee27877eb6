"""GroupKFold by participant: the validation signers of a fold are never seen in its training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.data.folds import assign_folds


def test_no_participant_in_two_folds_on_the_real_id_list(real_samples):
    """On the real 94,477 ids (21 signers): each participant sits in exactly one of 5 folds, all folds used."""
    ids = pd.read_csv(real_samples / "train_ids_folds5.csv")
    folds = assign_folds(ids["participant_id"].to_numpy(), 5)
    per_participant = pd.Series(folds).groupby(ids["participant_id"].to_numpy()).nunique()
    assert (per_participant == 1).all()
    assert set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.max() / sizes.min() < 1.5, "folds are balanced by sequence count"


def test_folds_are_deterministic():
    """The same participants give the same folds, whatever the row order seen before."""
    pids = np.repeat(np.arange(10) * 7 + 10000, 13)
    assert np.array_equal(assign_folds(pids, 5), assign_folds(pids.copy(), 5))


def test_too_few_participants_is_a_clear_error():
    """Asking for more folds than signers fails with the fix."""
    with pytest.raises(KitError, match="at least 5 participants"):
        assign_folds(np.array([1, 1, 2, 2]), 5)
