"""Ship Zoom admin operation logs as ECS JSON lines."""

__version__ = "0.1.0"
