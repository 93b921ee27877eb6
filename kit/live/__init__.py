"""`kit live`: sign into your webcam (or play a video) in a local web page and watch any model answer.

cutting (when a sign starts and ends: a small pure rule), session (one page's pipeline: MediaPipe Holistic on each
frame, the sign cut out of the stream, the model's answer, the takes recorded), server (the Starlette app on
127.0.0.1 and its WebSocket), static/ (the page: plain HTML, CSS and JavaScript, no CDN).

Imports the contract (the model runner of `kit predict`), seeing (the overlay's colours and connections), capture
(the same Holistic and the same folder writer as `kit capture`), data and the core; the rule is in ARCHITECTURE.md
and tests/test_layout.py.
"""
