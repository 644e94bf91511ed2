"""TelegramBotAssistant: a self-hosted AI assistant for Telegram."""
