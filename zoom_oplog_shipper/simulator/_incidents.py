"""The ``incidents`` scenario: 30 days of benign activity with attack stories played inside, and the truth.

Both streams come from one seeded generator (``random.Random("zoom-incidents:SEED")``): an
organisation of 60 users and four admins. The baseline is what the detection rules must stay quiet
on, including near misses (4 users deleted in 10 minutes, 19 recordings in an hour, 9 users behind
the office address in an hour, 2 addresses for one user in an hour, security settings turned on,
batched details that turn one setting on and another off, an admin signing in from a new address
and changing nothing for hours). Each incident is one attack story, a batched-detail variant beside
each story told by a setting change; :class:`Incident` says which records make it and which rules
must fire on it. docs/simulator.md and docs/detections.md describe them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from zoom_oplog_shipper.simulator._data import _make

DAYS = 30
OPERATORS = ("admin@example.com", "it-ops@example.com", "helpdesk@example.io", "owner@example.com")
_DOMAINS = ("example.com", "example.io", "corp.example.net")
_FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kim", "lena")
_LAST = ("smith", "jones", "garcia", "chen", "patel")
OFFICE_ADDRESS = "203.0.113.10"
_ON_OFF = "from On to Off"
_OFF_ON = "from Off to On"
_BENIGN_SETTINGS = (
    "Security  - Waiting Room: from Off to On",
    "Security  - Sign in with Two-Factor Authentication: from Off to On",
    "Security  - Require a passcode when scheduling new meetings: from Off to On",
    "In Meeting (Basic)  - Chat: from On to Off",
    "In Meeting (Basic)  - File transfer: from Off to On",
    "In Meeting (Advanced)  - Breakout room: from Off to On",
    "Recording  - Automatic recording: from Off to On",
    "Schedule Meeting  - Host video: from On to Off",
    "Sign-in Methods  - Allow users to sign in with Google: from On to Off",
    # Batched: one setting on, another off; no rule may read it as the first turned off.
    "Security  - Sign in with Two-Factor Authentication: from Off to On - Waiting Room: from Off to On",
    "In Meeting (Basic)  - Chat: from Off to On - File transfer: from On to Off",
    "Recording  - Cloud recording: from Off to On - Automatic recording: from On to Off",
)
_TITLES = ("Engineer", "Manager", "Analyst", "Director")
_DEPARTMENTS = ("Sales", "Engineering", "Finance", "Support")
_ROOMS = ("Boardroom 1", "Huddle 3A", "Lab West")
_GROUPS = ("Engineers", "Sales EMEA", "Support Tier 2")
_IM_GROUPS = ("all-hands", "eng-oncall", "random")


@dataclass(frozen=True)
class Incident:
    """One attack story: its records in both streams and the rules that must fire on it."""

    name: str
    rules: tuple[str, ...]
    operations: tuple[dict[str, str], ...] = ()
    activities: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """Both streams' records (baseline and incidents, by time) and the incidents among them."""

    operations: list[dict[str, str]]
    activities: list[dict[str, str]]
    incidents: tuple[Incident, ...] = field(default_factory=tuple)

    def records(self, stream: str) -> list[dict[str, str]]:
        """The records of ``stream`` (``operations`` or ``activities``)."""
        return self.operations if stream == "operations" else self.activities


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def operation(epoch: int, category: str, action: str, detail: str, operator: str) -> dict[str, str]:
    """An operation-log record as the API returns it."""
    return _make(category, action, detail, operator, _stamp(epoch))


def sign_in(epoch: int, email: str, address: str, client: str = "Windows", kind: str = "Sign in") -> dict[str, str]:
    """A sign-in (or sign-out) activity record as the API returns it."""
    return {
        "client_type": client,
        "email": email,
        "ip_address": address,
        "time": _stamp(epoch),
        "type": kind,
        "version": "6.2.5.51087",
    }


_Detail = Callable[[random.Random, str], str]
#: The admins' benign changes: (pick below, category, action, detail from the draw and a user).
_CHANGES: tuple[tuple[float, str, str, _Detail], ...] = (
    (0.15, "User", "Update", lambda r, u: f"Update User {u}  - Job Title: set to {r.choice(_TITLES)}"),
    (0.25, "User", "Update", lambda r, u: f"Update User {u}  - Department: set to {r.choice(_DEPARTMENTS)}"),
    (0.35, "Role", "Update", lambda r, u: f"Change Role  - {u}: from Member to {r.choice(('Help Desk', 'Auditor'))}"),
    (0.5, "Account", "Update", lambda r, u: r.choice(_BENIGN_SETTINGS)),
    (0.55, "User Group", "Update", lambda r, u: f"Edit Group {r.choice(_GROUPS)}  - Add Member: {u}"),
    (0.6, "IM", "Update", lambda r, u: f"Edit IM Group {r.choice(_IM_GROUPS)}  - Add Member: {u}"),
    (0.7, "Recording", "Delete", lambda r, u: f"Delete cloud recording for meeting {r.randrange(10**10, 10**11)}"),
    (
        0.78,
        "Zoom Rooms",
        "Update",
        lambda r, u: f"Edit Room {r.choice(_ROOMS)}  - Share screen with HDMI: from Off to On",
    ),
    (
        0.85,
        "User",
        "Add",
        lambda r, u: (
            f"Add User {r.choice(_FIRST)}.{r.randrange(100, 999)}@{r.choice(_DOMAINS)}"
            f"  - User Type: Licensed - Department: {r.choice(_DEPARTMENTS)}"
        ),
    ),
    (0.875, "User", "Delete", lambda r, u: f"Delete User {u}"),
    (0.9, "User", "Update", lambda r, u: f"Deactivate User {u}"),
    (0.95, "Billing", "Update", lambda r, u: "Update billing contact information"),
    (
        1.0,
        "User Group",
        "Update",
        lambda r, u: f"Edit Group {r.choice(_GROUPS)}  - Personal Meeting ID (PMI) Passcode: from Off to On",
    ),
)


class _Baseline:
    """Draws the benign days; all randomness from ``rng``."""

    def __init__(self, rng: random.Random, start: int) -> None:
        self.rng = rng
        self.start = start
        self.users = [f"{f}.{last}@{rng.choice(_DOMAINS)}" for f in _FIRST for last in _LAST]
        self.home = {user: f"198.51.100.{i + 1}" for i, user in enumerate(self.users)}
        self.admin_home = {op: f"192.0.2.{i + 1}" for i, op in enumerate(OPERATORS)}
        self.operations: list[dict[str, str]] = []
        self.activities: list[dict[str, str]] = []

    def at(self, day: int, hour: float) -> int:
        return self.start + day * 86400 + int(hour * 3600) + self.rng.randrange(60)

    def day(self, day: int) -> None:
        rng = self.rng
        # Office sign-ins every two hours, at most 9 users a slot: never 10 behind one address in an hour.
        for slot in (8, 10, 12, 14, 16):
            for user in rng.sample(self.users, rng.randrange(4, 10)):
                self.activities.append(sign_in(self.at(day, slot + rng.random() / 3), user, OFFICE_ADDRESS))
        # Evening sign-ins from home (and a phone for some), over an hour after the last office
        # slot: never 3 addresses for one user in an hour.
        for user in rng.sample(self.users, 25):
            moment = self.at(day, rng.uniform(17.5, 22))
            self.activities.append(sign_in(moment, user, self.home[user], rng.choice(("Mac", "Windows", "Browser"))))
            self.activities.append(sign_in(moment + 3600 + rng.randrange(3600), user, self.home[user], kind="Sign out"))
            if rng.random() < 0.3:
                self.activities.append(sign_in(moment + 900, user, f"2001:db8:7::{self.users.index(user):x}", "iOS"))
        for operator in OPERATORS:
            moment = self.at(day, rng.uniform(7.5, 9))
            self.activities.append(sign_in(moment, operator, self.admin_home[operator], "Mac"))
            for _ in range(rng.randrange(6, 12)):
                moment += rng.randrange(120, 2400)
                self.operations.append(self.change(moment, operator))

    def change(self, moment: int, operator: str) -> dict[str, str]:
        """One of the day's benign changes, drawn from :data:`_CHANGES`."""
        rng = self.rng
        user = rng.choice(self.users)
        pick = rng.random()
        _, category, action, detail = next(row for row in _CHANGES if pick < row[0])
        return operation(moment, category, action, detail(rng, user), operator)

    def near_misses(self) -> None:
        """Benign bursts just under each threshold, and a new address without a change after it.

        In the evening or at night, when the day's regular changes (07:30 to about 17:00) cannot
        add to a burst.
        """
        rng = self.rng
        base = self.at(3, 20)
        for n, user in enumerate(rng.sample(self.users, 4)):  # 4 deletions in 8 minutes
            self.operations.append(operation(base + n * 120, "User", "Delete", f"Delete User {user}", OPERATORS[0]))
        base = self.at(5, 21)
        for n in range(19):  # 19 recordings in 55 minutes
            detail = f"Delete cloud recording for meeting {rng.randrange(10**10, 10**11)}"
            self.operations.append(operation(base + n * 170, "Recording", "Delete", detail, OPERATORS[1]))
        base = self.at(20, 2.5)
        traveller = self.users[0]
        for n, address in enumerate((self.home[traveller], "2001:db8:99::1")):  # 2 addresses in an hour
            self.activities.append(sign_in(base + n * 600, traveller, address))
        # An admin on a new address (a hotel) who changes nothing until three hours later.
        base = self.at(12, 19)
        self.activities.append(sign_in(base, OPERATORS[2], "198.18.0.44", "Mac"))
        detail = f"Update User {self.users[3]}  - Job Title: set to Manager"
        self.operations.append(operation(base + 3 * 3600, "User", "Update", detail, OPERATORS[2]))
        # A privileged role removed (no grant near it).
        detail = f"Update User {self.users[5]}  - User Role: from Admin to Member"
        self.operations.append(operation(self.at(14, 10), "User", "Update", detail, OPERATORS[3]))


Story = Callable[[int], Incident]
ATTACKER = "it-ops@example.com"


def _setting(name: str, rules: tuple[str, ...], category: str, detail: str) -> Story:
    def story(t: int) -> Incident:
        action = "Add" if detail.startswith("Add ") else "Update"
        return Incident(name, rules, (operation(t, category, action, detail, ATTACKER),))

    return story


_CATCH_ALL = "zoom_security_setting_disabled"
_GRANT = "zoom_privileged_role_granted"
_TEMPORAL = "zoom_privileged_role_granted_then_removed"


def _grant_then_remove(name: str, grant: str, remove: str) -> Story:
    def story(t: int) -> Incident:
        return Incident(
            name,
            (_GRANT, _TEMPORAL),
            (
                operation(t, "User", "Update", grant, ATTACKER),
                operation(t + 25 * 60, "User", "Update", remove, ATTACKER),
            ),
        )

    return story


def _burst(name: str, rule: str, details: list[tuple[str, str, str]], spacing: int) -> Story:
    def story(t: int) -> Incident:
        ops = tuple(operation(t + n * spacing, cat, act, det, ATTACKER) for n, (cat, act, det) in enumerate(details))
        return Incident(name, (rule,), ops)

    return story


def _sign_ins(name: str, rule: str, pairs: list[tuple[str, str]], spacing: int) -> Story:
    def story(t: int) -> Incident:
        return Incident(name, (rule,), (), tuple(sign_in(t + n * spacing, u, a) for n, (u, a) in enumerate(pairs)))

    return story


def _new_address(t: int) -> Incident:
    detail = "Update User kim.patel@example.com  - Job Title: set to Director"
    return Incident(
        "admin-change-after-new-address",
        ("zoom_admin_change_after_new_address",),
        (operation(t + 10 * 60, "User", "Update", detail, OPERATORS[3]),),
        (sign_in(t, OPERATORS[3], "198.18.7.7", "Browser"),),
    )


_TWO_FA = "zoom_two_factor_sign_in_disabled"
_PASSWORD = "zoom_sign_in_password_requirement_weakened"
_METHOD = "zoom_sign_in_method_enabled"
_SIGN_OUT = "zoom_automatic_sign_out_disabled"
_SECURE = "zoom_meeting_security_option_disabled"
_PASSCODE = "zoom_meeting_passcode_disabled"
_RECORDING = "zoom_cloud_recording_disabled"
_SELF = "zoom_privileged_role_self_granted"
_ROLE_DEFINITION = "zoom_role_definition_changed"
_OUTSIDE = "zoom_user_added_outside_org_domains"

#: Stories told by one record: (name, rules that must fire, category, operation_detail). A
#: ``-batched`` story puts the same change in one detail with another change.
_ONE_RECORD: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        "two-factor-off",
        (_TWO_FA, _CATCH_ALL),
        "Account",
        f"Security  - Sign in with Two-Factor Authentication: {_ON_OFF}",
    ),
    (
        "two-factor-off-batched",
        (_TWO_FA, _CATCH_ALL),
        "Account",
        f"Security  - Waiting Room: {_OFF_ON} - Sign in with Two-Factor Authentication: {_ON_OFF}",
    ),
    (
        "password-weakened",
        (_PASSWORD, _CATCH_ALL),
        "Account",
        f"Sign-In Password Requirement  - Include at least 1 letter: {_ON_OFF}",
    ),
    (
        "password-weakened-batched",
        (_PASSWORD, _CATCH_ALL),
        "Account",
        "Sign-In Password Requirement  - Minimum password length: from 8 to 10"
        f" - Include at least 1 special character: {_ON_OFF}",
    ),
    ("sign-in-method-on", (_METHOD,), "Account", f"Sign-in Methods  - Allow users to sign in with Google: {_OFF_ON}"),
    (
        "sign-in-method-on-batched",
        (_METHOD,),
        "Account",
        f"Sign-in Methods  - Allow users to sign in with Apple: {_ON_OFF} - Allow users to sign in with SSO: {_OFF_ON}",
    ),
    (
        "sign-out-off",
        (_SIGN_OUT, _CATCH_ALL),
        "Account",
        f"Security  - Automatically sign users out after a specified time: {_ON_OFF}",
    ),
    (
        "sign-out-off-batched",
        (_SIGN_OUT, _CATCH_ALL),
        "Account",
        f"Security  - Waiting Room: {_OFF_ON} - Automatically sign users out after a specified time: {_ON_OFF}",
    ),
    (
        "secure-meetings-off",
        (_SECURE, _CATCH_ALL),
        "Account",
        f"Security  - Require that all meetings are secured with one security option: {_ON_OFF}",
    ),
    (
        "secure-meetings-off-batched",
        (_SECURE, _CATCH_ALL),
        "Account",
        f"Security  - Sign in with Two-Factor Authentication: {_OFF_ON}"
        f" - Require that all meetings are secured with one security option: {_ON_OFF}",
    ),
    (
        "passcode-off",
        (_PASSCODE, _CATCH_ALL),
        "Account",
        f"Security  - Require a passcode when scheduling new meetings: {_ON_OFF}",
    ),
    (
        "group-passcode-off",
        (_PASSCODE, _CATCH_ALL),
        "User Group",
        f"Edit Group Sales EMEA  - Personal Meeting ID (PMI) Passcode: {_ON_OFF}",
    ),
    (
        "passcode-off-batched",
        (_PASSCODE, _CATCH_ALL),
        "Account",
        f"Schedule Meeting  - Host video: {_OFF_ON} - Require a passcode for instant meetings: {_ON_OFF}",
    ),
    ("waiting-room-off", (_CATCH_ALL,), "Account", f"Security  - Waiting Room: {_ON_OFF}"),
    (
        "authenticated-join-off-batched",
        (_CATCH_ALL,),
        "Account",
        f"Security  - Waiting Room: {_OFF_ON} - Only authenticated users can join meetings: {_ON_OFF}",
    ),
    (
        "privileged-role-granted",
        (_GRANT,),
        "User",
        "Update User eve.rogue@example.com  - User Role: from Member to Admin",
    ),
    (
        "privileged-role-granted-batched",
        (_GRANT,),
        "User",
        "Update User frank.jones@example.com  - Department: set to Finance - User Role: from Member to Billing Admin",
    ),
    ("self-granted", (_GRANT, _SELF), "User", f"Update User {ATTACKER}  - User Role: from Member to Owner"),
    (
        "self-granted-batched",
        (_GRANT, _SELF),
        "User",
        f"Update User {ATTACKER}  - Job Title: set to Lead - User Role: from Help Desk to Co-Owner",
    ),
    (
        "role-definition-changed",
        (_ROLE_DEFINITION,),
        "Role",
        "Edit Role Help Desk  - User Management  - Users: from View to Edit",
    ),
    (
        "role-definition-changed-batched",
        (_ROLE_DEFINITION,),
        "Role",
        "Edit Role Auditor  - Reports  - Usage Reports: from Off to View"
        " - Recording Management  - Recordings: from View to Edit",
    ),
    ("cloud-recording-off", (_RECORDING,), "Account", "Change account setting Cloud Recording from ON to OFF"),
    (
        "cloud-recording-off-batched",
        (_RECORDING,),
        "Account",
        f"Recording  - Automatic recording: {_OFF_ON} - Cloud recording: {_ON_OFF}",
    ),
    ("user-added-outside-domains", (_OUTSIDE,), "User", "Add User backup.admin@outside.example  - User Type: Licensed"),
)


def _stories() -> list[Story]:
    deletions = [("User", "Delete", f"Delete User target{n}@example.com") for n in range(3)]
    deletions += [("User", "Update", f"Deactivate User target{n}@example.io") for n in range(3, 6)]
    recordings = [("Recording", "Delete", f"Delete cloud recording for meeting 8{n:010d}") for n in range(24)]
    many = [("lena.chen@example.com", a) for a in ("192.0.2.200", "2001:db8:66::5", "198.18.3.9")]
    spray = [(f"{f}.{last}@example.com", "198.51.100.250") for f in _FIRST[:6] for last in _LAST[:2]]
    return [
        *(_setting(name, rules, category, detail) for name, rules, category, detail in _ONE_RECORD),
        _grant_then_remove(
            "granted-then-removed",
            "Change Role  - mallory.x@example.com: from Member to Admin",
            "Change Role  - mallory.x@example.com: from Admin to Member",
        ),
        _grant_then_remove(
            "granted-then-removed-batched",
            "Update User trent.y@example.com  - Job Title: set to Lead - User Role: from Member to Owner",
            "Update User trent.y@example.com  - User Role: from Owner to Member - Department: set to Sales",
        ),
        _burst("mass-user-deletion", "zoom_mass_user_deletion", deletions, 80),
        _burst("bulk-recording-deletion", "zoom_bulk_recording_deletion", recordings, 100),
        _sign_ins("sign-in-from-many-addresses", "zoom_user_sign_in_from_many_addresses", many, 900),
        _sign_ins("many-users-one-address", "zoom_many_users_from_one_address", spray, 240),
        _new_address,
    ]


def incident_scenario(seed: int, end: datetime, days: int = DAYS) -> Scenario:
    """The baseline of ``days`` days before ``end`` with every incident inside it; same seed, same scenario.

    Incidents are played at night (01:00-05:00 UTC), one a night from day 1 on, away from the
    baseline's office hours.
    """
    if end.tzinfo is None:
        msg = "incident_scenario: end must be an aware datetime (UTC)"
        raise ValueError(msg)
    stories = _stories()
    if days < len(stories) // 4 + 2:
        msg = f"incident_scenario: {days} days cannot hold {len(stories)} incidents (at least {len(stories) // 4 + 2})"
        raise ValueError(msg)
    rng = random.Random(f"zoom-incidents:{seed}")
    start = (int(end.timestamp()) // 86400 - days) * 86400
    baseline = _Baseline(rng, start)
    for day in range(days):
        baseline.day(day)
    baseline.near_misses()
    incidents = tuple(
        story(start + (1 + n // 4) * 86400 + (1 + n % 4) * 3600 + rng.randrange(600)) for n, story in enumerate(stories)
    )
    last = int(end.timestamp())
    operations = _by_time(baseline.operations, (r for i in incidents for r in i.operations), last)
    activities = _by_time(baseline.activities, (r for i in incidents for r in i.activities), last)
    return Scenario(operations, activities, incidents)


def _by_time(base: list[dict[str, str]], extra: Iterator[dict[str, str]], last: int) -> list[dict[str, str]]:
    """Every record before ``last`` (epoch), oldest first."""
    limit = _stamp(last)
    return sorted((r for r in (*base, *extra) if r["time"] < limit), key=lambda r: r["time"])
