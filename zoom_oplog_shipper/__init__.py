"""Ship Zoom admin operation logs as ECS JSON lines."""

__version__ = "0.2.0"
