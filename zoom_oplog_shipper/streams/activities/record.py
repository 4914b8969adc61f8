"""What a Zoom sign-in/sign-out activity record says, as both of its mappings read it.

The record (``GET /report/activities``, field ``activity_logs``) is ``{email, time, type,
ip_address, client_type, version}``; any field may be missing.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from zoom_oplog_shipper.formats.ecs import normalize
from zoom_oplog_shipper.mapping import text_field

#: The record's fields, in the order Zoom documents them.
FIELDS = ("email", "time", "type", "ip_address", "client_type", "version")
SIGN_IN = "sign-in"
SIGN_OUT = "sign-out"

# Zoom's type (lower case) -> (event.action, ECS event.type)
_KNOWN = {"sign in": (SIGN_IN, "start"), "sign out": (SIGN_OUT, "end")}


def source_ip(value: object) -> str | None:
    """The address ``value`` holds when it is one IPv4 or IPv6 address, in canonical form; else None.

    A zone index (``fe80::1%eth0``) is refused: Elasticsearch's ``ip`` type does not take one.
    """
    if not isinstance(value, str) or "%" in value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def action_of(kind: str | None) -> tuple[str | None, str | None]:
    """``(event.action, ECS event.type)`` for Zoom's ``type``; the type is None when it is unknown."""
    if kind is None:
        return None, None
    known = _KNOWN.get(" ".join(kind.lower().split()))
    if known is not None:
        return known
    return normalize(kind) or None, None


def summary(record: dict[str, Any]) -> str | None:
    """One line for people: ``Sign in by a@example.com from 192.0.2.1 using Mac 6.0.2``."""
    kind, email, address = text_field(record, "type"), text_field(record, "email"), text_field(record, "ip_address")
    client, version = text_field(record, "client_type"), text_field(record, "version")
    if kind is None and email is None:
        return None
    parts = [kind or "Activity"]
    if email:
        parts.append(f"by {email}")
    if address:
        parts.append(f"from {address}")
    if client:
        parts.append(f"using {client}" + (f" {version}" if version and version != "-" else ""))
    return " ".join(parts)
