"""Best-effort parser for the free-text ``operation_detail`` of Zoom operation logs.

Zoom writes what an admin did as prose: ``"Security  - Sign in with Two-Factor Authentication:
from On to Off"``, ``"Update User bart@example.io  - User Role: from Member to Admin"``,
``"Change Role  - homer@example.io: from User to Co-Owner"``. This module turns that prose into a
:class:`Detail` (object acted on, setting changes, role change, derived security flags); the
output mappings beside it (:mod:`.ecs`, :mod:`.ocsf`) turn a :class:`Detail` into their fields.

The parser is total: any input, including ``None``, non-strings and text it does not know, yields a
:class:`Detail` (the empty one for unknown text) and never raises. It is driven by the pattern
tables below, not by call-site regexes, and runs per record, so every pattern is compiled once,
cheap string checks gate the regexes, and results are memoised (a :class:`Detail` is immutable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, NamedTuple

__all__ = [
    "ADMIN_ROLE_PATTERN",
    "EMAIL_PATTERN",
    "SECURITY_CONTROL_RULES",
    "TAG_ADMIN_ROLE_GRANTED",
    "TAG_SECURITY_CONTROL_DISABLED",
    "Change",
    "Detail",
    "RoleChange",
    "SecurityControlRule",
    "change_as_dict",
    "object_and_changes",
    "parse_detail",
    "setting_to",
]

# Longer details exist (bulk edits) but nothing useful sits past this; bounding the input bounds
# the worst-case regex cost per record.
MAX_PARSE_CHARS: Final = 4096

TAG_SECURITY_CONTROL_DISABLED: Final = "security-control-disabled"
TAG_ADMIN_ROLE_GRANTED: Final = "admin-role-granted"


class Change(NamedTuple):
    """One setting change: ``section - setting: from old to new``.

    ``old`` is ``None`` for "set to" forms and plain assignments (``"User Type: Basic"``);
    ``new`` is ``None`` only when Zoom's text omits it (``"from On to"``).
    """

    section: str | None
    setting: str
    old: str | None
    new: str | None


class RoleChange(NamedTuple):
    """A user's role before (``None`` when assigned at creation) and after the operation."""

    old: str | None
    new: str


class Detail(NamedTuple):
    """What :func:`parse_detail` understood of one ``operation_detail``.

    Every field is optional; ``Detail()`` (all empty) means "nothing recognised".
    ``object_type`` names the kind of object acted on (``user``, ``group``, ``role``, ``meeting``,
    ``webinar``, ``recording``). ``related_users`` lists every user identifier seen in the text
    (target first). ``disabled_controls`` names the entries of :data:`SECURITY_CONTROL_RULES` that
    the changes weakened; ``security_control_disabled`` is true when it is non-empty.
    ``admin_granted`` is true when a user was given an admin/owner role.
    """

    object_type: str | None = None
    target_user_email: str | None = None
    target_user_name: str | None = None
    group_name: str | None = None
    role: str | None = None
    meeting_id: str | None = None
    webinar_id: str | None = None
    recording: bool = False
    changes: tuple[Change, ...] = ()
    role_change: RoleChange | None = None
    related_users: tuple[str, ...] = ()
    disabled_controls: tuple[str, ...] = ()
    security_control_disabled: bool = False
    admin_granted: bool = False

    @property
    def is_empty(self) -> bool:
        """True when nothing was recognised in the text."""
        return self == _EMPTY


_EMPTY: Final = Detail()


# --- derived-flag tables ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecurityControlRule:
    """A security control recognised in ``"<section> | <setting>"`` (lower case).

    ``keywords`` are plain substrings of which at least one occurs in every text ``pattern``
    matches: a cheap prefilter, since most settings name no security control. ``weak_when`` is
    the value that weakens the control: ``"off"`` for controls such as two-factor sign-in,
    ``"on"`` for opt-outs such as "embed passcode in invite link". The first matching rule
    decides, so opt-outs come before the controls they mention.
    """

    control: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    weak_when: str


SECURITY_CONTROL_RULES: Final[tuple[SecurityControlRule, ...]] = tuple(
    SecurityControlRule(control, keywords, re.compile(pattern), weak_when)
    for control, keywords, pattern, weak_when in (
        # Opt-outs: turning these ON weakens a control.
        ("passcode", ("passcode",), r"embed(?:ded)? (?:the )?passcode|passcode[^|]*one[- ]click", "on"),
        ("waiting-room", ("waiting room",), r"(?:bypass|skip)[^|]*waiting room", "on"),
        # Controls: turning these OFF weakens them.
        (
            "two-factor-authentication",
            ("factor", "2fa", "mfa"),
            r"two[- ]?factor|\b2fa\b|multi[- ]?factor|\bmfa\b",
            "off",
        ),
        ("waiting-room", ("waiting room",), r"waiting room", "off"),
        ("meeting-security-option", ("security option", "secured with"), r"security option|secured with", "off"),
        (
            "passcode",
            ("passcode", "password"),
            r"passcode|(?:meeting|webinar|pmi|join)[^|]*password|password[^|]*(?:meeting|webinar|pmi|join)",
            "off",
        ),
        (
            "sign-out-timer",
            ("sign", "log", "time", "idle", "inactiv"),
            r"sign\w* (?:users? )?out|sign[- ]out|log(?:ged)?[- ]?out|time[- ]?out|idle|inactiv",
            "off",
        ),
        (
            "password-rules",
            ("password", "include at least", "minimum", "consecutive"),
            r"password (?:requirement|rule|policy|complexity|strength|expir|length|history)"
            r"|enhanced password|include at least|minimum[^|]*(?:length|characters?)"
            r"|consecutive characters",
            "off",
        ),
        (
            "authenticated-join",
            ("authenticat",),
            r"authenticated users|only authenticated|authentication profile",
            "off",
        ),
    )
)

_OFF_VALUES: Final = frozenset({"off", "false", "disabled", "disable", "no", "none", "unchecked", "not required", "0"})
_ON_VALUES: Final = frozenset({"on", "true", "enabled", "enable", "yes", "checked", "required", "1"})

#: A role whose name matches this is an admin role; granting it sets ``Detail.admin_granted``.
ADMIN_ROLE_PATTERN: Final = re.compile(r"\b(?:admin|administrator|owner|co[- ]?owner|super ?admin)s?\b", re.IGNORECASE)

# --- text patterns ---------------------------------------------------------------------------

_EMAIL_CHARS = r"[^\s@()<>\[\],;:\"'|]"
_DOMAIN_CHARS = r"[^\s@()<>\[\],;:\"'|.]"
_EMAIL = rf"{_EMAIL_CHARS}+@{_DOMAIN_CHARS}+(?:\.{_DOMAIN_CHARS}+)+"
_EMAIL_RE: Final = re.compile(_EMAIL)
_EMAIL_SPLIT_RE: Final = re.compile(f"({_EMAIL})")
#: The regular expression (text) the parser reads an e-mail address with.
EMAIL_PATTERN: Final = _EMAIL

# " - " separates the head from the "- X: ..." parts; Zoom writes it with one or two spaces.
_PART_SEP_RE: Final = re.compile(r" [-\u2013\u2014] ")

# Verbs that open an object head such as "Update User x" or "Edit Group y". A set lookup on the
# first word is the prefilter that keeps section heads ("Schedule Meeting", "Cloud recording")
# from being mistaken for objects.
_OBJECT_VERBS: Final = frozenset(
    """add added create created delete deleted remove removed update updated edit edited change
    changed modify modified activate activated deactivate deactivated enable enabled disable
    disabled invite invited link linked unlink unlinked assign assigned unassign unassigned
    transfer transferred restore restored recover recovered move moved reset revoke revoked
    suspend suspended unsuspend approve approved reject rejected upgrade upgraded downgrade
    downgraded import imported export exported register registered unregister scheduled batch
    view viewed download downloaded""".split()  # noqa: SIM905 - a word list reads better
)

_OBJECT_HEAD_RE: Final = re.compile(
    r"(?:batch )?(?P<verb>[^\W\d_]+) "
    r"(?P<obj>(?:user |im )?groups?|users?|roles?|meetings?|webinars?"
    r"|(?:cloud |local )?recordings?)"
    r"(?: (?P<name>.+))?",
    re.IGNORECASE,
)

# "Change account setting Cloud Recording from ON to OFF" (no " - " parts).
_SETTING_HEAD_RE: Final = re.compile(
    r"(?:change|changed|update|updated|edit|edited|modify|modified) "
    r"(?:(?:account|user|group|sub[- ]account|room|zoom rooms?) )?settings? "
    r"(?P<setting>.+?):? from (?P<old>.*?) to(?: (?P<new>.*))?",
    re.IGNORECASE,
)

_MEETING_ID_RE: Final = re.compile(
    r"\b(?P<kind>meeting|webinar)s?(?: id)?[: #]*(?P<id>\d(?:[\d -]*\d)?)\b", re.IGNORECASE
)
_LEADING_ID_RE: Final = re.compile(r"(?:id[: #]*)?(?P<id>\d(?:[\d -]*\d)?)\b", re.IGNORECASE)

# Part forms, tried in order. Names are kept short: they run per part of every record.
_FROM_TO_RE: Final = re.compile(r"(?P<key>.+?): ?from(?: (?P<old>.*?))? to(?: (?P<new>.*))?", re.I)
_SET_TO_RE: Final = re.compile(r"(?P<key>.+?):? set to(?: (?P<new>.*))?", re.IGNORECASE)
_BARE_FROM_TO_RE: Final = re.compile(r"(?P<key>.+?) from (?P<old>.+?) to(?: (?P<new>.*))?", re.I)
_ASSIGN_RE: Final = re.compile(r"(?P<key>[^:]+?) ?: ?(?P<new>.*)")

# Parts that add or remove a group's members ("Add Member: a@x.io"): the address is the target user.
_MEMBER_SETTING_RE: Final = re.compile(r"(?:add|added|remove|removed|delete|deleted)(?: group)? members?", re.I)
# Settings that hold a user's role ("User Role", "Role"), not e.g. "Role Members".
_ROLE_SETTING_RE: Final = re.compile(r"(?:(?:user|account|assigned|zoom) )?role(?: name)?", re.IGNORECASE)
_LEADING_VERB_RE: Final = re.compile(
    r"(?:batch )?(?:change|changed|update|updated|edit|edited|modify|modified|set|assign|assigned)"
    r"\b ?",
    re.IGNORECASE,
)
_NAME_STRIP: Final = " \t\"'()<>[],;:"

_USER_CATEGORIES: Final = frozenset({"user", "role", "admin"})


# --- parser ----------------------------------------------------------------------------------


def parse_detail(
    text: str | None,
    category_type: str | None = None,
    action: str | None = None,
    *,
    max_chars: int | None = MAX_PARSE_CHARS,
) -> Detail:
    """Parse one ``operation_detail`` into a :class:`Detail`; never raises.

    ``category_type`` and ``action`` are the record's other fields, used as hints. A part keyed
    by an e-mail address, ``"Change Role  - homer@x.io: from User to Co-Owner"``, names the target
    user; its setting comes from the head ("Change Role" gives ``Role``) and is ``Role`` whenever
    the category or action mentions a role. In the user, role and admin categories (or with a
    role hint) a lone e-mail address in otherwise unknown text is taken as the target user.
    Anything that is not a string counts as missing. Text the tables do not recognise yields the
    empty ``Detail()``. Only the first ``max_chars`` characters are read (None: all of them, for a
    caller that has bounded the text itself).
    """
    if not isinstance(text, str) or not text:
        return _EMPTY
    category = category_type if isinstance(category_type, str) else None
    act = action if isinstance(action, str) else None
    try:
        return _parse_cached(text if max_chars is None else text[:max_chars], category, act)
    except Exception:  # noqa: BLE001  # pragma: no cover - totality guard; the tests find no input that gets here
        return _EMPTY


@lru_cache(maxsize=4096)
def _parse_cached(text: str, category_type: str | None, action: str | None) -> Detail:
    return _parse(text, category_type, action)


def _parse(text: str, category_type: str | None, action: str | None) -> Detail:
    # Collapse every run of whitespace (double spaces, tabs, NBSP) to one space.
    norm = " ".join(text.split())
    if not norm:
        return _EMPTY
    category = (category_type or "").strip().lower().replace(" ", "_")
    hints = f"{category} {action or ''}".lower()
    role_context = "role" in hints
    user_context = category in _USER_CATEGORIES or role_context

    b = _Builder()
    pieces = _PART_SEP_RE.split(norm)
    head, parts = pieces[0], pieces[1:]

    section: str | None = None
    key_setting = "User"  # setting name for parts keyed by an e-mail ("Change Role - a@b: ...")
    if not _parse_head(head, b, has_parts=bool(parts)):
        section = head or None
        if head and "@" in norm:
            stripped = _LEADING_VERB_RE.sub("", head, count=1).strip()
            key_setting = stripped or key_setting
    elif b.object_type == "role" and b.role is None:
        key_setting = "Role"
    if role_context and key_setting == "User":
        key_setting = "Role"

    if parts:
        _parse_parts(parts, section, key_setting, b)

    if b.target_user_email is None and b.target_user_name is None and user_context and "@" in norm:
        emails = _EMAIL_RE.findall(norm)
        if len(emails) == 1:
            b.set_target_email(emails[0])
    return b.build()


def _parse_head(head: str, b: _Builder, *, has_parts: bool) -> bool:
    """Recognise an object head ("Add User x", "Delete cloud recording for meeting 1")."""
    first = head.split(" ", 1)[0].lower()
    if first not in _OBJECT_VERBS:
        return False
    if not has_parts and " from " in head.lower():
        m = _SETTING_HEAD_RE.fullmatch(head)
        if m:
            b.add_change(None, m["setting"], m["old"], m["new"])
            return True
    m = _OBJECT_HEAD_RE.fullmatch(head)
    if m is None:
        return False
    _parse_object(m["obj"].lower(), (m["name"] or "").strip() or None, b)
    return True


def _parse_object(obj: str, name: str | None, b: _Builder) -> None:
    """The object an object head names ("user", "im group", "cloud recording"...) and its name."""
    if obj.startswith(("user group", "im group", "group")):
        b.object_type = "group"
        b.group_name = name
    elif obj.startswith("user"):
        b.object_type = "user"
        if name is not None:
            _parse_user_name(name, b)
    elif obj.startswith("role"):
        b.object_type = "role"
        b.role = name
    elif obj.startswith(("meeting", "webinar")):
        kind = "meeting" if obj.startswith("meeting") else "webinar"
        b.object_type = kind
        idm = _LEADING_ID_RE.match(name) if name is not None else None
        if idm:
            b.set_id(kind, idm["id"])
    else:
        b.object_type = "recording"
        b.recording = True
        idm = _MEETING_ID_RE.search(name) if name is not None else None
        if idm:
            b.set_id(idm["kind"].lower(), idm["id"])


def _parse_user_name(name: str, b: _Builder) -> None:
    """``"bart@x.io"``, ``"Bart Simpson (bart@x.io)"``, ``"Bart <bart@x.io>"`` or ``"Jürgen"``."""
    m = _EMAIL_RE.search(name)
    if m is None:
        b.set_target_name(name.strip(_NAME_STRIP))
        return
    b.set_target_email(m[0])
    rest = (name[: m.start()] + " " + name[m.end() :]).strip(_NAME_STRIP + " ")
    if rest:
        b.set_target_name(" ".join(rest.strip(_NAME_STRIP).split()))


def _parse_parts(parts: list[str], section: str | None, key_setting: str, b: _Builder) -> None:
    # A part with neither a colon nor an e-mail continues the previous value ("R&D - Europe").
    merged: list[str] = []
    for part in parts:
        if merged and ":" not in part and "@" not in part and " to " not in part:
            merged[-1] = f"{merged[-1]} - {part}"
        else:
            merged.append(part)
    for part in merged:
        _parse_part(part.strip(), section, key_setting, b)


def _parse_part(part: str, section: str | None, key_setting: str, b: _Builder) -> None:
    if not part:
        return
    low = part.lower()
    m: re.Match[str] | None = None
    if "from" in low:
        m = _FROM_TO_RE.fullmatch(part)
        if m is None and ":" not in part:
            m = _BARE_FROM_TO_RE.fullmatch(part)
        if m is not None:
            _keyed_change(m["key"], m["old"], m["new"], section, key_setting, b)
            return
    if "set to" in low:
        m = _SET_TO_RE.fullmatch(part)
        if m is not None:
            _keyed_change(m["key"], None, m["new"], section, key_setting, b)
            return
    if ":" in part:
        m = _ASSIGN_RE.fullmatch(part)
        if m is not None and not _EMAIL_RE.fullmatch(m["key"].strip()):
            _keyed_change(m["key"], None, m["new"], section, key_setting, b)
            return
    if "@" in part:
        em = _EMAIL_RE.fullmatch(part.strip(_NAME_STRIP))
        if em is not None:
            b.set_target_email(em[0])


def _keyed_change(
    key: str, old: str | None, new: str | None, section: str | None, key_setting: str, b: _Builder
) -> None:
    key = key.strip()
    em = _EMAIL_RE.fullmatch(key.strip(_NAME_STRIP)) if "@" in key else None
    if em is not None:
        b.set_target_email(em[0])
        key = key_setting
        if b.object_type in (None, "role") and b.role is None:
            # "Change Role - a@b: from X to Y": the object is the user, the role its attribute.
            b.object_type = "user"
    elif new is not None and "@" in new and _MEMBER_SETTING_RE.fullmatch(key):
        # "Edit IM Group x  - Add Member: a@x.io": the member added or removed is the user acted on.
        for member in _EMAIL_RE.findall(new):
            b.set_target_email(member)
    b.add_change(section, key, old, new)


class _Builder:
    """Mutable accumulator behind :func:`parse_detail`; ``build`` derives the flags."""

    __slots__ = (
        "changes",
        "group_name",
        "meeting_id",
        "object_type",
        "recording",
        "related",
        "role",
        "target_user_email",
        "target_user_name",
        "webinar_id",
    )

    def __init__(self) -> None:
        self.object_type: str | None = None
        self.target_user_email: str | None = None
        self.target_user_name: str | None = None
        self.group_name: str | None = None
        self.role: str | None = None
        self.meeting_id: str | None = None
        self.webinar_id: str | None = None
        self.recording = False
        self.changes: list[Change] = []
        self.related: list[str] = []

    def set_target_email(self, email: str) -> None:
        if self.target_user_email is None:
            self.target_user_email = email
        if email not in self.related:
            self.related.append(email)

    def set_target_name(self, name: str) -> None:
        if not name:
            return
        if self.target_user_name is None:
            self.target_user_name = name
        if name not in self.related:
            self.related.append(name)

    def set_id(self, kind: str, raw: str) -> None:
        ident = "".join(ch for ch in raw if ch.isdigit())
        if kind == "webinar":
            self.webinar_id = self.webinar_id or ident
        else:
            self.meeting_id = self.meeting_id or ident

    def add_change(self, section: str | None, setting: str, old: str | None, new: str | None) -> None:
        setting = setting.strip()
        if not setting:
            return
        self.changes.append(Change(section, setting, _clean(old), _clean(new)))

    def build(self) -> Detail:
        changes = tuple(self.changes)
        role_change: RoleChange | None = None
        admin_granted = False
        for ch in changes:
            if ch.new is None or "role" not in ch.setting.lower() or not _ROLE_SETTING_RE.fullmatch(ch.setting):
                continue
            if role_change is None:
                role_change = RoleChange(ch.old, ch.new)
            if _grants_admin(ch.old, ch.new):
                admin_granted = True
        disabled = _disabled_controls(changes)
        if self.object_type is None and not changes and not self.related:
            return _EMPTY
        return Detail(
            object_type=self.object_type,
            target_user_email=self.target_user_email,
            target_user_name=self.target_user_name,
            group_name=self.group_name,
            role=self.role,
            meeting_id=self.meeting_id,
            webinar_id=self.webinar_id,
            recording=self.recording,
            changes=changes,
            role_change=role_change,
            related_users=tuple(self.related),
            disabled_controls=disabled,
            security_control_disabled=bool(disabled),
            admin_granted=admin_granted,
        )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip(".").strip()
    return value or None


def _grants_admin(old: str | None, new: str) -> bool:
    if not ADMIN_ROLE_PATTERN.search(new):
        return False
    return old is None or old.strip().lower() != new.strip().lower()


def _value_state(value: str | None) -> str | None:
    if value is None:
        return None
    low = value.strip().lower()
    if low in _OFF_VALUES:
        return "off"
    if low in _ON_VALUES:
        return "on"
    return None


def _disabled_controls(changes: tuple[Change, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for ch in changes:
        new_state = _value_state(ch.new)
        if new_state is None or new_state == _value_state(ch.old):
            continue
        subject = f"{ch.section or ''} | {ch.setting}".lower()
        for rule in SECURITY_CONTROL_RULES:
            # A plain loop, not any(): a generator per rule costs more than the substring tests.
            for keyword in rule.keywords:
                if keyword in subject:
                    break
            else:
                continue
            if rule.pattern.search(subject):
                if rule.weak_when == new_state and rule.control not in found:
                    found.append(rule.control)
                break
    return tuple(found)


def object_and_changes(detail: Detail) -> dict[str, Any]:
    """``{object_type, changes}`` of a parsed detail, the changes as :func:`change_as_dict`; absent parts left out."""
    out: dict[str, Any] = {}
    if detail.object_type:
        out["object_type"] = detail.object_type
    if detail.changes:
        out["changes"] = [change_as_dict(ch) for ch in detail.changes]
    return out


def change_as_dict(ch: Change) -> dict[str, str]:
    """``{section, setting, from, to, setting_to}`` for one change, leaving out the parts that are absent."""
    d = {"section": ch.section} if ch.section else {}
    d["setting"] = ch.setting
    if ch.old is not None:
        d["from"] = ch.old
    if ch.new is not None:
        d["to"] = ch.new
        d["setting_to"] = setting_to(ch)
    return d


def setting_to(ch: Change) -> str:
    """One term for "this setting now has this value": ``security - waiting room: off``.

    ``<section> - <setting>: <new value>`` (without a section, ``<setting>: <new value>``), in lower
    case except e-mail addresses (kept as written), the new value ``on`` or ``off`` when it is
    on-like or off-like (``Enabled``, ``OFF``, ``true``...). A search index stores a list of
    changes as independent lists of settings and values, so a query for a setting AND a value may
    match two different changes of one record; this one term can only match one change.
    """
    value = _value_state(ch.new) or ch.new or ""
    text = f"{ch.section} - {ch.setting}: {value}" if ch.section else f"{ch.setting}: {value}"
    if "@" not in text:
        return text.lower()
    parts = _EMAIL_SPLIT_RE.split(text)  # odd items are addresses
    return "".join(part if i % 2 else part.lower() for i, part in enumerate(parts))
