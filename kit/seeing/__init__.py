"""Seeing what there is: data and runs shown to a person, and runs recorded.

A sequence drawn frame by frame (show), MediaPipe's points over the pictures they came from (overlay), a data set
as tables and plots (stats), one run as an HTML page (report), every run at a glance (runs), runs recorded in MLflow
(track). Training writes its report and tracking through this package, so it sits below training: it imports the
data, capture and preprocessing packages and the shared core; the rule is in ARCHITECTURE.md and
tests/test_layout.py.
"""
