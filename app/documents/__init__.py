"""Documents a user sends, as text: format detection, extraction, chunking, page images.

Pure: no Telegram, no database, no settings. Only app.domain of ours is imported here
(tests/unit/test_layers.py holds the line), so the services can run it in a thread.
"""
