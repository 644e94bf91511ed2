"""Plugins: features from outside the bot's own code (a Python package found through the
`telegram_bot_assistant.plugins` entry point group, or a module in PLUGINS_PATH), each
bringing its commands and dialogs, its tools for the model, its rights, texts and settings.
A plugin sees only app/plugins/api.py; app/plugins/loader.py finds and loads them."""
