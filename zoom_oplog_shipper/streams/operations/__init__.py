"""The admin operation logs (`--stream operations`): their ECS and OCSF mappings and the `operation_detail` parser."""
