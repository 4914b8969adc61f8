"""Ship Zoom's admin operation logs and sign-in/sign-out activity logs as ECS, OCSF or raw JSON lines."""

__version__ = "0.2.0"
