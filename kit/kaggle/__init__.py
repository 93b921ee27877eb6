"""Everything that talks to Kaggle, through its one door (api: credentials, the lazily built client, retries).

fetch (the competition's data, resumable and verified), submit (a model up, the submission kernel pushed, scored),
and training in Kaggle's kernels: plan (what goes up, decided before the first network call), wheel (the running kit
as a wheel), train (`kit kaggle train|status|cancel`), output (a kernel's finished folds brought back, verified).
Imports the contract, training and everything below; the rule is in ARCHITECTURE.md and tests/test_layout.py.
"""
