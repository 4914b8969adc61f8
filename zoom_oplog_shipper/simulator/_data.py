"""Operation-log records: a deterministic generator, a JSONL loader and the served index."""

from __future__ import annotations

import bisect
import heapq
import random
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from zoom_oplog_shipper.streams import CATEGORY_TYPES

# Zoom's documented category_type filter values, plus "admin" which newer docs list.
CATEGORY_FILTERS = CATEGORY_TYPES

_SEPARATORS = re.compile(r"[\s\-]+")
_category_cache: dict[str, str] = {}


def category_key(display: object) -> str | None:
    """Map a record's ``category_type`` display name to the filter value that selects it.

    ``"User Settings"`` -> ``user_settings``, ``"Zoom Rooms"`` -> ``zoom_rooms``, ``"user"`` ->
    ``user``. Names no filter uses (``"User Group"`` -> ``user_group``) are only matched by
    ``all``; a missing or non-string category yields None.
    """
    if not isinstance(display, str):
        return None
    key = _category_cache.get(display)
    if key is None:
        key = _SEPARATORS.sub("_", display.strip().lower())
        if len(_category_cache) < 10_000:
            _category_cache[display] = key
    return key


def parse_record_time(value: object) -> int:
    """Epoch seconds of a record's ``time`` (ISO 8601; a naive time is taken as UTC)."""
    if not isinstance(value, str):
        msg = f"record time {value!r} is not a string like 2024-06-07T10:00:00Z"
        raise ValueError(msg)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = f"record time {value!r} is not ISO 8601 like 2024-06-07T10:00:00Z"
        raise ValueError(msg) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def format_time(epoch: int) -> str:
    """The API's time form, ``2024-06-07T10:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read one JSON object a line; blank lines are skipped. Errors name the file and line."""
    records: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            records.append(_decode_record(line, f"{path}:{number}"))
    return records


def decode_records(body: bytes, where: str) -> list[dict[str, Any]]:
    """Decode a JSON array of objects or JSONL (the admin endpoint accepts both)."""
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            msg = f"{where}: not a JSON array: {exc}"
            raise ValueError(msg) from None
        if not isinstance(items, list):
            msg = f"{where}: expected a JSON array of records"
            raise ValueError(msg)
        return [_check_record(item, f"{where}[{i}]") for i, item in enumerate(items)]
    return [
        _decode_record(line, f"{where} line {n}") for n, line in enumerate(body.splitlines(), start=1) if line.strip()
    ]


def _decode_record(line: bytes, where: str) -> dict[str, Any]:
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        msg = f"{where}: not JSON: {exc}"
        raise ValueError(msg) from None
    return _check_record(item, where)


def _check_record(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        msg = f"{where}: a record must be a JSON object"
        raise ValueError(msg)
    try:
        parse_record_time(item.get("time"))
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ValueError(msg) from None
    return item


# ---------------------------------------------------------------------------------------------
# Generator. Templates follow the public samples: display-name categories, capitalised actions,
# a double space before " - " in setting changes, "from On to Off" transitions.

_FIRST = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yusuf",
]
_LAST = ["smith", "jones", "garcia", "chen", "patel", "novak", "silva", "kim", "okafor", "berg"]
_DOMAINS = ("example.com", "example.io", "corp.example.net")
_OPERATORS = (
    "admin@example.com",
    "admin@example.com",
    "superadmin@example.com",
    "it-ops@example.com",
    "helpdesk@example.io",
    "owner@example.com",
)
_DEPTS = ("Sales", "Engineering", "Finance", "Support", "Legal", "Marketing", "HR")
_TITLES = ("Contractor", "Engineer", "Manager", "Director", "Analyst", "Intern")
_ROLES = ("Admin", "Member", "Owner", "Billing Admin", "Co-Owner", "Help Desk", "Auditor")
_USER_TYPES = ("Basic", "Licensed", "On-Prem")
_GROUPS = ("Springfield", "Engineers", "Sales EMEA", "Support Tier 2", "Contractors")
_ROOMS = ("Boardroom 1", "Huddle 3A", "Lab West", "Lobby Kiosk", "Training Room")
_IM_GROUPS = ("all-hands", "eng-oncall", "sales-deals", "random")
_SUB_ACCOUNTS = ("Acme Retail", "Acme Labs", "Acme APAC")
_PLANS = ("Pro", "Business", "Large Meetings 500", "Cloud Recording 1TB", "Webinar 1000")
_ACCOUNT_SETTINGS = (
    "Security  - Sign in with Two-Factor Authentication",
    "Security  - Require that all meetings are secured with one security option",
    "Security  - Require a passcode when scheduling new meetings",
    "Security  - Automatically sign users out after a specified time",
    "Security  - Waiting Room",
    "Sign-in Methods  - Allow users to sign in with Google",
    "Sign-in Methods  - Allow users to sign in with SSO",
    "In Meeting (Basic)  - Chat",
    "In Meeting (Basic)  - File transfer",
    "In Meeting (Advanced)  - Breakout room",
    "Recording  - Cloud recording",
    "Recording  - Automatic recording",
    "Schedule Meeting  - Join before host",
)
_USER_SETTINGS = (
    "Meeting  - Host video",
    "Meeting  - Participants video",
    "In Meeting (Basic)  - Private chat",
    "In Meeting (Basic)  - Screen sharing",
    "Recording  - Local recording",
    "Email Notification  - When a cloud recording is available",
)
_ROLE_PERMISSIONS = (
    "Reports  - Admin Activity Logs",
    "Reports  - Usage Reports",
    "User Management  - Users",
    "Account Management  - Account Settings",
    "Recording Management  - Recordings",
)

# (category display name, weight)
_CATEGORY_WEIGHTS = (
    ("User", 34),
    ("Account", 12),
    ("User Settings", 10),
    ("Recording", 10),
    ("User Group", 6),
    ("Role", 5),
    ("IM", 5),
    ("Webinar", 5),
    ("Zoom Rooms", 4),
    ("Billing", 3),
    ("Phone Contacts", 3),
    ("Sub Account", 3),
)
_CATEGORIES = tuple(name for name, _ in _CATEGORY_WEIGHTS)
_CATEGORY_CUM = tuple(sum(weight for _, weight in _CATEGORY_WEIGHTS[: i + 1]) for i in range(len(_CATEGORY_WEIGHTS)))


class _Gen:
    """Draws one record's fields; all randomness comes from the seeded ``rng``.

    Picks use ``rng.random()`` arithmetic rather than ``rng.choice``: several times faster, and
    generating a million records is a benchmark's setup cost.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.r = rng.random
        self.users = tuple(f"{first}.{last}@{self.c(_DOMAINS)}" for first in _FIRST for last in _LAST)

    def c(self, values: tuple[str, ...]) -> str:
        return values[int(self.r() * len(values))]

    def between(self, low: int, high: int) -> int:
        """An int in ``[low, high)``."""
        return low + int(self.r() * (high - low))

    def email(self) -> str:
        return self.users[int(self.r() * len(self.users))]

    def onoff(self) -> str:
        return "from On to Off" if self.r() < 0.5 else "from Off to On"

    def two(self, values: tuple[str, ...]) -> tuple[str, str]:
        n = len(values)
        first = int(self.r() * n)
        second = int(self.r() * (n - 1))
        if second >= first:
            second += 1
        return values[first], values[second]

    def changed(self, values: tuple[str, ...], text: str) -> str:
        """``text`` naming a user and a change between two different ``values``, drawn before the user."""
        old, new = self.two(values)
        return text.format(user=self.email(), old=old, new=new)

    def record(self, category: str | None = None) -> tuple[str, str, str]:
        """Return (category, action, operation_detail); an unknown category gives a Sub Account record."""
        r = self.r
        category = category or _CATEGORIES[bisect.bisect_right(_CATEGORY_CUM, r() * _CATEGORY_CUM[-1])]
        pick = r()
        name = category if category in _DETAILS else "Sub Account"
        subject = _SUBJECTS.get(name)
        value = subject(self) if subject is not None else None
        _, action, detail = next(row for row in _DETAILS[name] if pick < row[0])
        return name, action, detail(self, value)


_Row = tuple[float, str, Callable[[_Gen, Any], str]]
_ROLE_CHANGE = "Change Role  - {user}: from {old} to {new}"
_TYPE_CHANGE = "Edit User {user}  - Change Type: from {old} to {new}"


def _permission_edit(g: _Gen, role: str) -> str:
    step = "from Off to View" if g.r() < 0.5 else "from View to Edit"
    return f"Edit Role {role}  - {g.c(_ROLE_PERMISSIONS)}: {step}"


def _added_deleted(noun: str, add_below: float, delete_below: float) -> tuple[_Row, _Row]:
    """The rows of a category whose subject is added (``Add Room X``) and deleted (``Delete Room X``)."""
    added: _Row = (add_below, "Add", lambda _, s: f"Add {noun} {s}")
    deleted: _Row = (delete_below, "Delete", lambda _, s: f"Delete {noun} {s}")
    return added, deleted


def _seats_edit(g: _Gen, sub: str) -> str:
    seats = g.between(5, 50)
    return f"Edit Sub Account {sub}  - Seats: from {seats} to {seats + g.between(1, 20)}"


# category -> what its details are about, drawn after the pick (categories absent have no subject).
_SUBJECTS: dict[str, Callable[[_Gen], Any]] = {
    "Recording": lambda g: g.between(10**10, 10**11),
    "User Group": lambda g: g.c(_GROUPS),
    "Role": lambda g: g.c(_ROLES),
    "IM": lambda g: g.c(_IM_GROUPS),
    "Webinar": lambda g: g.between(10**10, 10**11),
    "Zoom Rooms": lambda g: g.c(_ROOMS),
    "Phone Contacts": lambda g: g.email().split("@", 1)[0].replace(".", " ").title(),
    "Sub Account": lambda g: g.c(_SUB_ACCOUNTS),
}
# category -> its (pick below, action, detail) rows: the first row whose bound is above the pick
# applies (the last takes the rest). A detail gets the subject and makes exactly the draws its text
# needs, in the order they were always made, so a seed's records never change.
_DETAILS: dict[str, tuple[_Row, ...]] = {
    "User": (
        (
            0.16,
            "Add",
            lambda g, _: f"Add User {g.email()}  - User Type: {g.c(_USER_TYPES)} - Department: {g.c(_DEPTS)}",
        ),
        (0.24, "Delete", lambda g, _: f"Delete User {g.email()}"),
        (0.30, "Activate", lambda g, _: f"Activate User {g.email()}"),
        (0.34, "Update", lambda g, _: f"Deactivate User {g.email()}"),
        (0.44, "Batch Update", lambda g, _: g.changed(_ROLES, _ROLE_CHANGE)),
        (0.54, "SCIM API - Update", lambda g, _: g.changed(_USER_TYPES, _TYPE_CHANGE)),
        (0.70, "Update", lambda g, _: g.changed(_ROLES, "Update User {user}  - User Role: from {old} to {new}")),
        (0.85, "Update", lambda g, _: f"Update User {g.email()}  - Job Title: set to {g.c(_TITLES)}"),
        (1.0, "Update", lambda g, _: f"Update User {g.email()}  - Department: set to {g.c(_DEPTS)}"),
    ),
    "Account": (
        (0.9, "Update", lambda g, _: f"{g.c(_ACCOUNT_SETTINGS)}: {g.onoff()}"),
        (1.0, "Update", lambda g, _: "Update account profile  - Account Name: set to Example Corp"),
    ),
    "User Settings": ((1.0, "Update", lambda g, _: f"Edit User {g.email()}  - {g.c(_USER_SETTINGS)}: {g.onoff()}"),),
    "Recording": (
        (0.6, "Delete", lambda g, s: f"Delete cloud recording for meeting {s}"),
        (0.8, "Update", lambda g, s: f"Recover cloud recording for meeting {s}"),
        (1.0, "Update", lambda g, s: f"Update recording settings for meeting {s}  - Share: {g.onoff()}"),
    ),
    "User Group": (
        *_added_deleted("Group", 0.3, 0.45),
        (0.7, "Update", lambda g, s: f"Edit Group {s}  - Add Member: {g.email()}"),
        (1.0, "Update", lambda g, s: f"Edit Group {s}  - Personal Meeting ID (PMI) Passcode: {g.onoff()}"),
    ),
    "Role": (
        *_added_deleted("Role", 0.2, 0.3),
        (0.65, "Update", _permission_edit),
        (1.0, "Update", lambda g, _: g.changed(_ROLES, _ROLE_CHANGE)),
    ),
    "IM": (
        *_added_deleted("IM Group", 0.3, 0.45),
        (1.0, "Update", lambda g, s: f"Edit IM Group {s}  - Add Member: {g.email()}"),
    ),
    "Webinar": (
        (0.4, "Delete", lambda g, s: f"Delete Webinar {s}"),
        (1.0, "Update", lambda g, s: f"Update Webinar {s}  - Registration: {g.onoff()}"),
    ),
    "Zoom Rooms": (
        *_added_deleted("Room", 0.2, 0.3),
        (1.0, "Update", lambda g, s: f"Edit Room {s}  - Share screen with HDMI: {g.onoff()}"),
    ),
    "Billing": (
        (0.4, "Update", lambda g, _: "Update billing contact information"),
        (0.7, "Add", lambda g, _: f"Add Plan {g.c(_PLANS)}"),
        (1.0, "Update", lambda g, _: f"Update payment method  - Card: ending in {g.between(1000, 10000)}"),
    ),
    "Phone Contacts": (
        *_added_deleted("External Contact", 0.5, 0.7),
        (
            1.0,
            "Update",
            lambda g, s: f"Edit External Contact {s}  - Phone Number: set to +1555{g.between(10**6, 10**7)}",
        ),
    ),
    "Sub Account": (
        (0.3, "Add", lambda g, s: f"Add Sub Account {s}"),
        (1.0, "Update", _seats_edit),
    ),
}


def _make(category: str, action: str, detail: str, operator: str, when: str) -> dict[str, str]:
    # Key order as in the samples (alphabetical), which is what the API returns.
    return {
        "action": action,
        "category_type": category,
        "operation_detail": detail,
        "operator": operator,
        "time": when,
    }


def generate_records(seed: int, days: int, records_per_day: int, end: datetime) -> list[dict[str, str]]:
    """Deterministic realistic records: ``records_per_day`` in each of the ``days`` days before ``end``.

    Day ``i`` is the 24 h span ending ``(days - 1 - i) * 24 h`` before ``end`` (aware datetime);
    every record's time lies in ``[end - days, end)``. The mix covers every category display name,
    actions Add/Update/Delete/Batch Update/SCIM API - Update/Activate, setting changes
    ``"...: from On to Off"``, same-second bursts, exact identical twins and rare records lacking
    ``action`` or ``operator``. Same arguments, same list. Sorted by time ascending.
    """
    return [record for _, record in iter_generated(seed, days, records_per_day, end)]


def _end_epoch(end: datetime, caller: str) -> int:
    """``end`` in epoch seconds; a naive datetime is refused (the generators' days end at an instant)."""
    if end.tzinfo is None:
        msg = f"{caller}: end must be an aware datetime (UTC)"
        raise ValueError(msg)
    return int(end.timestamp())


def iter_generated(seed: int, days: int, records_per_day: int, end: datetime) -> Iterator[tuple[int, dict[str, str]]]:
    """``(epoch, record)`` pairs of ``generate_records``, produced lazily in time order."""
    end_ts = _end_epoch(end, "generate_records")
    gen = _Gen(random.Random(f"zoom-oplog-simulator:{seed}"))
    r = gen.r
    when = _stamps()
    for day in range(days):
        day_end = end_ts - (days - 1 - day) * 86400
        day_start = day_end - 86400
        made = 0
        out: list[tuple[int, dict[str, str]]] = []
        while made < records_per_day:
            epoch = gen.between(day_start, day_end)
            operator = gen.c(_OPERATORS)
            batch = _batch(gen, r(), epoch, operator, day_end, when)
            for item in batch[: records_per_day - made]:
                if r() < 0.005:
                    del item[1]["action" if r() < 0.5 else "operator"]
                out.append(item)
                made += 1
        out.sort(key=_first_item)
        yield from out


def _stamps() -> Callable[[int], str]:
    """Zoom's time text of an epoch second, with each day's prefix made once."""
    prefixes: dict[int, str] = {}

    def when(epoch: int) -> str:
        day, second = divmod(epoch, 86400)
        prefix = prefixes.get(day)
        if prefix is None:
            prefix = prefixes[day] = format_time(day * 86400)[:11]
        hours, rest = divmod(second, 3600)
        return f"{prefix}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"

    return when


def _batch(
    gen: _Gen, kind: float, epoch: int, operator: str, day_end: int, when: Callable[[int], str]
) -> list[tuple[int, dict[str, str]]]:
    """The records one draw makes (``kind`` picks which): mostly one, sometimes twins, a burst or a sweep."""
    r, c = gen.r, gen.c
    if kind < 0.03:
        # Identical twins: the same change applied twice in one batch.
        category, action, detail = gen.record()
        stamp = when(epoch)
        return [(epoch, _make(category, action, detail, operator, stamp)) for _ in range(2 + int(r() * 2))]
    if kind < 0.07:
        # Same-second burst: a batch role change or a SCIM sync touching several users.
        action = "Batch Update" if r() < 0.5 else "SCIM API - Update"
        stamp = when(epoch)
        values, text = (_ROLES, _ROLE_CHANGE) if action == "Batch Update" else (_USER_TYPES, _TYPE_CHANGE)
        return [
            (epoch, _make("User", action, gen.changed(values, text), operator, stamp)) for _ in range(2 + int(r() * 5))
        ]
    if kind < 0.09:
        # A settings sweep: several account settings within a few seconds, some equal.
        batch = []
        moment = epoch
        for _ in range(3 + int(r() * 4)):
            detail = f"{c(_ACCOUNT_SETTINGS)}: {gen.onoff()}"
            batch.append((moment, _make("Account", "Update", detail, operator, when(moment))))
            moment = min(moment + (0, 0, 1, 2, 5)[int(r() * 5)], day_end - 1)
        return batch
    category, action, detail = gen.record()
    return [(epoch, _make(category, action, detail, operator, when(epoch)))]


def _first_item(item: tuple[int, Any]) -> int:
    return int(item[0])


# ---------------------------------------------------------------------------------------------
# Sign-in/sign-out activity records. Their own seeded stream (``zoom-activity-simulator:SEED``),
# so adding them never changes the operation records a seed gives.

# (client_type, weight): Zoom's names with the case variants seen in peers' data ("Mac", "mac").
_CLIENT_WEIGHTS = (
    ("Windows", 30), ("Mac", 16), ("mac", 4), ("iOS", 12), ("Android", 10), ("Browser", 12), ("Linux", 3),
    ("iPad", 3), ("windows", 2),
)  # fmt: skip
_CLIENTS = tuple(name for name, _ in _CLIENT_WEIGHTS)
_CLIENT_CUM = tuple(sum(weight for _, weight in _CLIENT_WEIGHTS[: i + 1]) for i in range(len(_CLIENT_WEIGHTS)))
_IPV4_NETS = ("192.0.2.", "198.51.100.", "203.0.113.", "10.20.", "172.16.")
_CLIENT_VERSIONS = ("5.16.10.26186", "5.17.11.34827", "6.0.2.33403", "6.1.0.45012", "6.2.5.51087")
_MOBILE_VERSIONS = ("5.17.10.20613", "6.0.4.21013", "6.1.5.23477")


class _ActivityGen:
    """Draws sign-in/sign-out records: each user keeps a usual client and address, sometimes roams."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng.random
        pick = self.pick
        self.users = tuple(f"{first}.{last}@{pick(_DOMAINS)}" for first in _FIRST for last in _LAST[:6])
        self.home = {user: (self.client(), self.address()) for user in self.users}

    def pick(self, values: tuple[str, ...]) -> str:
        return values[int(self.r() * len(values))]

    def client(self) -> str:
        return _CLIENTS[bisect.bisect_right(_CLIENT_CUM, self.r() * _CLIENT_CUM[-1])]

    def address(self) -> str:
        r = self.r
        if r() < 0.12:
            return f"2001:db8:{int(r() * 0xFFFF):x}::{int(r() * 0xFFFF):x}"
        net = self.pick(_IPV4_NETS)
        if net.count(".") == 3:
            return f"{net}{1 + int(r() * 254)}"
        return f"{net}{int(r() * 256)}.{1 + int(r() * 254)}"

    def version(self, client: str) -> str:
        if client == "Browser" and self.r() < 0.8:
            return "-"
        return self.pick(_MOBILE_VERSIONS if client in ("iOS", "Android", "iPad") else _CLIENT_VERSIONS)

    def record(self, stamp: str, activity: str | None = None) -> dict[str, str]:
        """One record at ``stamp``; about 1 in 50 lacks ``ip_address``, ``client_type`` or ``version``."""
        r = self.r
        user = self.pick(self.users)
        client, address = self.home[user]
        if r() < 0.15:  # roaming: another device or network
            client, address = self.client(), self.address()
        record = {
            "client_type": client,
            "email": user,
            "ip_address": address,
            "time": stamp,
            "type": activity or ("Sign in" if r() < 0.6 else "Sign out"),
            "version": self.version(client),
        }
        if r() < 0.02:
            del record[("ip_address", "client_type", "version")[int(r() * 3)]]
        return record


def generate_activity_records(seed: int, days: int, records_per_day: int, end: datetime) -> list[dict[str, str]]:
    """Deterministic sign-in/sign-out records, ``records_per_day`` in each of ``days`` 24 h spans before ``end``.

    Same day layout as ``generate_records``, from a separate random stream. Records carry Zoom's
    fields ``{client_type, email, ip_address, time, type, version}`` with ``type`` "Sign in" or
    "Sign out"; the mix has client types in varying case ("Mac", "mac"), version "-" (browsers),
    IPv6 addresses, shared sign-ins (several users in one second), identical duplicates and rare
    records lacking a field. Same arguments, same list. Sorted by time ascending.
    """
    return [record for _, record in iter_activities(seed, days, records_per_day, end)]


def iter_activities(seed: int, days: int, records_per_day: int, end: datetime) -> Iterator[tuple[int, dict[str, str]]]:
    """``(epoch, record)`` pairs of ``generate_activity_records``, produced lazily in time order."""
    end_ts = _end_epoch(end, "generate_activity_records")
    gen = _ActivityGen(random.Random(f"zoom-activity-simulator:{seed}"))
    r = gen.r
    for day in range(days):
        low = end_ts - (days - day) * 86400
        batch: list[tuple[int, dict[str, str]]] = []
        while len(batch) < records_per_day:
            moment = low + int(r() * 86400)
            stamp = format_time(moment)
            kind = r()
            if kind < 0.02:  # the same record twice
                same = gen.record(stamp)
                group = [same, dict(same)]
            elif kind < 0.08:  # shared sign-ins: a meeting starts, several users sign in at once
                group = [gen.record(stamp, "Sign in") for _ in range(2 + int(r() * 7))]
            else:
                group = [gen.record(stamp)]
            batch.extend((moment, record) for record in group[: records_per_day - len(batch)])
        batch.sort(key=_first_item)
        yield from batch


# ---------------------------------------------------------------------------------------------
# The served index.


_EPOCH = itemgetter(0)
_BLOB = itemgetter(1)
_PAIR = itemgetter(0, 1)


class _Index:
    """Records sorted by time: ``keys`` (epoch seconds) parallel to pre-serialized ``blobs``."""

    __slots__ = ("blobs", "keys")

    def __init__(self) -> None:
        self.keys: array[int] = array("q")
        self.blobs: list[bytes] = []

    def add(self, items: list[tuple[int, bytes]]) -> None:
        """Insert items (sorted by time), each after existing records of the same second."""
        keys, blobs = self.keys, self.blobs
        if not keys or items[0][0] >= keys[-1]:
            keys.extend(map(_EPOCH, items))
            blobs.extend(map(_BLOB, items))
            return
        if len(items) <= 8:
            for epoch, blob in items:
                at = bisect.bisect_right(keys, epoch)
                keys.insert(at, epoch)
                blobs.insert(at, blob)
            return
        # One pass of C-level slice copies: O(N + k) instead of k memmoves of the whole index.
        new_keys: array[int] = array("q")
        new_blobs: list[bytes] = []
        done = 0
        for epoch, blob in items:
            at = bisect.bisect_right(keys, epoch, done)
            if at > done:
                new_keys += keys[done:at]
                new_blobs += blobs[done:at]
                done = at
            new_keys.append(epoch)
            new_blobs.append(blob)
        new_keys += keys[done:]
        new_blobs += blobs[done:]
        self.keys, self.blobs = new_keys, new_blobs

    def between(self, start: int, end: int) -> list[bytes]:
        """Blobs with ``start <= time < end``, ascending (a copy: a snapshot)."""
        lo = bisect.bisect_left(self.keys, start)
        hi = bisect.bisect_left(self.keys, end, lo)
        return self.blobs[lo:hi]


class RecordStore:
    """All records, split into visible ones (indexed) and pending ones (late or future).

    Not thread-safe: the Simulator serialises access with its lock.
    """

    def __init__(self) -> None:
        self._all = _Index()
        self._by_category: dict[str, _Index] = {}
        self._pending: list[tuple[float, int, int, bytes, str | None]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._all.keys) + len(self._pending)

    @property
    def visible_count(self) -> int:
        """How many records queries can currently see (as of the last ``release``)."""
        return len(self._all.keys)

    def add(self, items: Iterable[tuple[int, bytes, str | None, float]], now: float) -> int:
        """Add ``(epoch, blob, category key, visible_at)`` items; returns the count.

        An item is visible to queries once ``now >= visible_at`` (callers pass at least its time).
        """
        ready: list[tuple[int, bytes, str | None]] = []
        count = 0
        for epoch, blob, category, due in items:
            if due <= now:
                ready.append((epoch, blob, category))
            else:
                heapq.heappush(self._pending, (due, self._seq, epoch, blob, category))
            self._seq += 1
            count += 1
        self._index(ready)
        return count

    def release(self, now: float) -> int:
        """Make pending records due by ``now`` visible; returns how many became visible."""
        pending = self._pending
        if not pending or pending[0][0] > now:
            return 0
        ready: list[tuple[int, bytes, str | None]] = []
        while pending and pending[0][0] <= now:
            _, _, epoch, blob, category = heapq.heappop(pending)
            ready.append((epoch, blob, category))
        self._index(ready)
        return len(ready)

    def _index(self, ready: list[tuple[int, bytes, str | None]]) -> None:
        if not ready:
            return
        ready.sort(key=_EPOCH)
        pairs = list(map(_PAIR, ready))
        self._all.add(pairs)
        groups: dict[str, list[tuple[int, bytes]]] = {}
        for pair, item in zip(pairs, ready, strict=True):
            category = item[2]
            if category is not None:
                group = groups.get(category)
                if group is None:
                    group = groups[category] = []
                group.append(pair)
        for category, items in groups.items():
            index = self._by_category.get(category)
            if index is None:
                index = self._by_category[category] = _Index()
            index.add(items)

    def between(self, start: int, end: int, category: str) -> list[bytes]:
        """Visible blobs with ``start <= time < end`` matching the filter value, ascending."""
        if category == "all":
            return self._all.between(start, end)
        index = self._by_category.get(category)
        return index.between(start, end) if index is not None else []

    def blobs(self, visible_only: bool) -> list[bytes]:
        """Every record (or every visible one) serialized, by time ascending."""
        if visible_only or not self._pending:
            return list(self._all.blobs)
        pending = [(epoch, seq, blob) for _, seq, epoch, blob, _ in self._pending]
        pending.sort(key=lambda item: (item[0], item[1]))
        merged = list(zip(self._all.keys, self._all.blobs, strict=True))
        merged.extend((epoch, blob) for epoch, _, blob in pending)
        merged.sort(key=lambda item: item[0])
        return [blob for _, blob in merged]


def day_start_epoch(day: date, offset_minutes: int) -> int:
    """Epoch seconds of local midnight of ``day`` (a date) at UTC offset ``offset_minutes``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(minutes=offset_minutes)
    return int(midnight.timestamp())
