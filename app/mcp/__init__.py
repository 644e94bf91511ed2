"""MCP servers' tools offered to the model: the servers listed in MCP_CONFIG (config.py),
started or connected at start-up and kept connected (client.py), each tool wrapped as one
of ours (tools.py)."""
