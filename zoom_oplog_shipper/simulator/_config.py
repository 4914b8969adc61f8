"""The simulator's switches (one frozen dataclass) and the parsers for their textual forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Order = Literal["newest", "oldest"]
FutureTo = Literal["accept", "reject"]
OverMax = Literal["reject", "clamp"]

GRANULAR_SCOPE = "report:read:operation_logs:admin"
ACTIVITIES_SCOPE = "report:read:user_activities:admin"
CLASSIC_SCOPE = "report:read:admin"
REPORT_SCOPES = (GRANULAR_SCOPE, CLASSIC_SCOPE)
ACTIVITY_SCOPES = (ACTIVITIES_SCOPE, CLASSIC_SCOPE)
# What a token carries by default: both granular scopes, so either report endpoint answers.
DEFAULT_SCOPE = f"{GRANULAR_SCOPE} {ACTIVITIES_SCOPE}"

# Every kind a fault schedule may name; the probabilistic picker draws from a subset.
FAULT_KINDS = (
    "500",
    "502",
    "503",
    "drop",
    "cut",
    "truncate",
    "html",
    "slow",
    "revoke",
    "expire",
    "qps",
    "daily",
)
DEFAULT_FAIL_KINDS = ("500", "502", "503", "drop", "truncate", "html")
FAULT_ENDPOINTS = ("api", "token", "logs", "activities")

SCENARIOS = ("generated", "incidents")

MIN_TZ_OFFSET_MINUTES = -12 * 60
MAX_TZ_OFFSET_MINUTES = 14 * 60


@dataclass(frozen=True)
class FaultRule:
    """Inject ``kind`` on request numbers ``first``..``last`` (1-based, inclusive) of ``endpoint``.

    ``endpoint`` is ``api`` (token and report requests counted together), ``token``, ``logs``
    (operation logs) or ``activities`` (sign-in/sign-out activity logs).
    """

    endpoint: str
    first: int
    last: int
    kind: str

    def matches(self, endpoint_numbers: dict[str, int]) -> bool:
        """Whether this rule fires for a request with these per-counter numbers."""
        number = endpoint_numbers.get(self.endpoint)
        return number is not None and self.first <= number <= self.last


_RULE_RE = re.compile(r"^(?:(?P<ep>[a-z]+):)?(?P<first>\d+)(?:-(?P<last>\d+))?=(?P<kind>[a-z0-9]+)$")


def parse_fault_schedule(spec: str, offsets: dict[str, int] | None = None) -> tuple[FaultRule, ...]:
    """Parse ``[ENDPOINT:]N[-M]=KIND`` items separated by commas, e.g. ``3-4=503,logs:7=drop``.

    With ``offsets`` (current request counts per endpoint), numbers are relative: ``1`` is the
    next request. Raises ValueError naming the bad item.
    """
    rules: list[FaultRule] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        match = _RULE_RE.match(item)
        if match is None:
            msg = f"fault schedule item {item!r} is not [ENDPOINT:]N[-M]=KIND (example: 3-4=503,logs:7=drop)"
            raise ValueError(msg)
        endpoint = match.group("ep") or "api"
        if endpoint not in FAULT_ENDPOINTS:
            msg = f"fault schedule item {item!r}: endpoint must be one of {', '.join(FAULT_ENDPOINTS)}"
            raise ValueError(msg)
        kind = match.group("kind")
        if kind not in FAULT_KINDS:
            msg = f"fault schedule item {item!r}: kind must be one of {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)
        first = int(match.group("first"))
        last = int(match.group("last") or first)
        if first < 1 or last < first:
            msg = f"fault schedule item {item!r}: request numbers start at 1 and N <= M"
            raise ValueError(msg)
        shift = (offsets or {}).get(endpoint, 0)
        rules.append(FaultRule(endpoint, first + shift, last + shift, kind))
    return tuple(rules)


_TZ_RE = re.compile(r"^(?P<sign>[+-])?(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$")


def parse_tz_offset(text: str) -> int:
    """Parse ``+05:30``, ``-12``, ``+0545``, ``0``, ``Z`` or ``UTC`` into minutes east of UTC."""
    value = text.strip()
    if value.upper() in ("Z", "UTC"):
        return 0
    match = _TZ_RE.match(value)
    if match is None:
        msg = f"time zone offset {text!r} is not like +05:30, -12 or UTC"
        raise ValueError(msg)
    minutes = int(match.group("hours")) * 60 + int(match.group("minutes") or 0)
    if match.group("minutes") is not None and int(match.group("minutes")) >= 60:
        msg = f"time zone offset {text!r}: minutes must be below 60"
        raise ValueError(msg)
    if match.group("sign") == "-":
        minutes = -minutes
    _check_tz_minutes(minutes)
    return minutes


def _check_tz_minutes(minutes: int) -> None:
    if not MIN_TZ_OFFSET_MINUTES <= minutes <= MAX_TZ_OFFSET_MINUTES:
        msg = f"time zone offset {minutes} minutes is outside -12:00..+14:00"
        raise ValueError(msg)


_DURATION_RE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``2h`` or ``1d`` into seconds."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        msg = f"duration {text!r} is not a number of seconds or like 15m, 2h, 1d"
        raise ValueError(msg)
    return float(match.group("n")) * _UNIT_SECONDS[match.group("unit")]


@dataclass(frozen=True)
class SimulatorConfig:
    """Every switch of the simulator; the defaults play Zoom as documented, with no data.

    UNDOCUMENTED Zoom behaviours are switches (``tz_offset_minutes``, ``order``, ``future_to``,
    ``max_range_days``, ``page_size_over_max``, ``invalid_*_status``, ``single_token``) so tests
    can prove a client right whichever way Zoom behaves. See docs/simulator.md.
    """

    account_id: str = "demo-account"
    client_id: str = "demo-client"
    client_secret: str = field(default="demo-secret", repr=False)
    token_ttl: int = 3600
    page_token_ttl: int = 900
    scope: str = DEFAULT_SCOPE
    api_url: str | None = None
    single_token: bool = False
    invalid_client_status: int = 401
    invalid_token_status: int = 401
    no_permission: bool = False
    tz_offset_minutes: int = 0
    order: Order = "newest"
    future_to: FutureTo = "accept"
    #: Whether `to` itself is in the range (UNDOCUMENTED by Zoom): "inclusive" or "exclusive".
    to_day: str = "inclusive"
    max_range_days: int | None = None
    retention_months: int = 6
    max_page_size: int = 300
    page_size_over_max: OverMax = "reject"
    echo_dates: bool = True
    seed: int = 0
    days: int = 0
    records_per_day: int = 0
    records_file: str | None = None
    late_fraction: float = 0.0
    late_by: float = 0.0
    qps_limit: int | None = None
    daily_limit: int | None = None
    fail_rate: float = 0.0
    fail_kinds: tuple[str, ...] = DEFAULT_FAIL_KINDS
    fail_schedule: str = ""
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    #: Every report request whose `from` is before this day (YYYY-MM-DD) waits slow_seconds: old
    #: windows answer slowly, so windows read at once finish out of order.
    slow_before: str = ""
    max_snapshot_records: int = 20_000_000
    activities_per_day: int = 0
    activities_file: str | None = None
    #: "generated" (records from seed, days, records_per_day, activities_per_day) or "incidents"
    #: (30 days of benign activity with attack stories inside, both streams; docs/detections.md).
    scenario: str = "generated"

    def __post_init__(self) -> None:
        """Reject inconsistent switches early, naming the switch and the allowed values."""
        problems = [*self._identity_problems(), *self._choice_problems(), *self._size_problems()]
        problems += [*self._rate_problems(), *self._fault_problems()]
        if problems:
            msg = "invalid simulator configuration: " + "; ".join(problems)
            raise ValueError(msg)

    def _identity_problems(self) -> list[str]:
        problems = [
            f"{name} must not be empty"
            for name in ("account_id", "client_id", "client_secret")
            if not getattr(self, name)
        ]
        if self.token_ttl < 1 or self.page_token_ttl < 1:
            problems.append("token_ttl and page_token_ttl must be at least 1 second")
        try:
            _check_tz_minutes(self.tz_offset_minutes)
        except ValueError as exc:
            problems.append(str(exc))
        return problems

    def _choice_problems(self) -> list[str]:
        problems = []
        if self.order not in ("newest", "oldest"):
            problems.append(f"order must be newest or oldest, not {self.order!r}")
        if self.scenario not in SCENARIOS:
            problems.append(f"scenario must be one of {', '.join(SCENARIOS)}, not {self.scenario!r}")
        if self.to_day not in ("inclusive", "exclusive"):
            problems.append(f"to_day must be inclusive or exclusive, not {self.to_day!r}")
        if self.future_to not in ("accept", "reject"):
            problems.append(f"future_to must be accept or reject, not {self.future_to!r}")
        if self.page_size_over_max not in ("reject", "clamp"):
            problems.append(f"page_size_over_max must be reject or clamp, not {self.page_size_over_max!r}")
        return problems

    def _size_problems(self) -> list[str]:
        problems = []
        if self.max_range_days is not None and self.max_range_days < 1:
            problems.append("max_range_days must be at least 1 (or None for one calendar month)")
        if self.retention_months < 1 or self.max_page_size < 1:
            problems.append("retention_months and max_page_size must be at least 1")
        if self.days < 0 or self.records_per_day < 0 or self.activities_per_day < 0:
            problems.append("days, records_per_day and activities_per_day must not be negative")
        return problems

    def _rate_problems(self) -> list[str]:
        problems = [
            f"{name} must be between 0 and 1, not {getattr(self, name)}"
            for name in ("late_fraction", "fail_rate", "slow_rate")
            if not 0.0 <= getattr(self, name) <= 1.0
        ]
        if self.late_by < 0 or self.slow_seconds < 0:
            problems.append("late_by and slow_seconds must not be negative")
        problems += [
            f"{name} must be at least 1 (or None for no limit)"
            for name in ("qps_limit", "daily_limit")
            if getattr(self, name) is not None and getattr(self, name) < 1
        ]
        return problems

    def _fault_problems(self) -> list[str]:
        problems = []
        if not self.fail_kinds or any(k not in FAULT_KINDS for k in self.fail_kinds):
            problems.append(f"fail_kinds must be a non-empty subset of {', '.join(FAULT_KINDS)}")
        problems += [
            f"{name} must be 400 or 401"
            for name in ("invalid_client_status", "invalid_token_status")
            if getattr(self, name) not in (400, 401)
        ]
        try:
            parse_fault_schedule(self.fail_schedule)
        except ValueError as exc:
            problems.append(str(exc))
        return problems

    @property
    def fault_rules(self) -> tuple[FaultRule, ...]:
        """The parsed ``fail_schedule``."""
        return parse_fault_schedule(self.fail_schedule)
