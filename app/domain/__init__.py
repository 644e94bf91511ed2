"""The domain's plain types, shared by every layer: enums, rights, references, value types.

Nothing here imports anything of ours (tests/unit/test_layers.py holds the line), so the
database, config, memory and services can all depend on it without cycles.
"""
