"""kit: from raw MediaPipe landmarks to a scored asl-signs submission.

One package per stage, over a small shared core (config, errors, progress, quiet): data -> preprocessing -> models ->
training -> contract (export, evaluate) -> kaggle (submit); capture, seeing and live (kit live's page) beside them, cli
on top.
ARCHITECTURE.md follows the data through them and says what each may import.
"""

__version__ = "0.1.0"
