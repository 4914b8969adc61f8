"""The sign-in/sign-out activity logs (`--stream activities`): their ECS and OCSF mappings."""
