"""pressbot: watch NGO and UN press feeds, flag reprisals and ICC news, alert Slack."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/pressbot/pressbot"
USER_AGENT = f"pressbot/{__version__} (+{PROJECT_URL})"
