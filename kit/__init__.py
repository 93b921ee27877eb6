"""kit: from raw MediaPipe landmarks to a scored asl-signs submission.

One module per pipeline stage: synth/fetch -> prepare -> preprocess -> train -> export -> evaluate -> submit.
"""

__version__ = "0.1.0"
