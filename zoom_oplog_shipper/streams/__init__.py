"""The log types: each is one `Stream` declaration of what differs; the engine owns what is shared.

A stream names its report endpoint, the field its records come in, the query parameters it adds,
the scopes `check` looks for, where its state lives, and its ECS and OCSF mappings. Windows, paging,
page-token restarts, learned API facts, dedupe, resume and the order of durability are the engine's
and the same for every stream. The simulator declares the same endpoints, keyed by `Stream.key`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoom_oplog_shipper.config import Config

#: (record, event id hex, account id, created RFC 3339, record time or None, include_original) -> ECS event
EcsMapper = Callable[..., dict[str, Any]]
#: (record, event id hex, account id, created time) -> OCSF event
OcsfMapper = Callable[[dict[str, Any], str, str, datetime], dict[str, Any]]

#: Zoom's documented category values, for the message when Zoom refuses one.
ZOOM_DOCUMENTED_CATEGORIES = (
    "all, user, user_settings, account, billing, im, recording, phone_contacts, webinar, sub_account, role, zoom_rooms"
)


@dataclass(frozen=True)
class Report:
    """A Zoom report endpoint and what reading it takes."""

    #: Under the API base URL.
    path: str
    #: The response field that holds the page's records.
    records_field: str
    #: Either one is enough to read the report (granular first, then classic).
    scopes: tuple[str, ...]
    #: The Zoom role permission the app owner needs, for the no-permission message.
    permission: str


@dataclass(frozen=True)
class EventMapping:
    """Where a stream's events land and the functions that build them."""

    #: ECS `event.dataset` and the data stream's dataset (the mappers write it; a test holds them to it).
    dataset: str
    ecs: str  # "module:function" of the ECS mapper, imported when used (start-up stays fast)
    ocsf: str  # "module:function" of the OCSF mapper


@dataclass(frozen=True)
class Stream:
    """One log type: everything about it that differs from the other log types."""

    #: `--stream` value, state partition and simulator key.
    key: str
    #: What a person calls it, in messages.
    title: str
    report: Report
    mapping: EventMapping
    #: Query parameters the stream adds to `from`, `to`, `page_size` and `next_page_token`.
    query: Callable[[Config], dict[str, str]] = field(default=lambda _config: {})
    #: Which store of the account this run uses (one store, and one lock, per partition).
    partition: Callable[[Config], str] = field(default=lambda _config: "")
    #: A message for a page-one refusal that is the user's setting's fault, else None.
    refused: Callable[[Config, str], str | None] = field(default=lambda _config, _text: None)

    def store_key(self, config: Config) -> str:
        """The state partition of this run; older operations stores keep their category name."""
        return self.partition(config) or self.key

    def state_path(self, config: Config) -> Path:
        """This run's store: one per account and partition, with its own lock beside it."""
        from zoom_oplog_shipper.state import state_file

        return state_file(config.state_dir, config.account_id, self.store_key(config))

    def mapper(self, output_format: str) -> Callable[..., dict[str, Any]]:
        """The ECS or OCSF mapping function of this stream."""
        from importlib import import_module

        target = self.mapping.ocsf if output_format == "ocsf" else self.mapping.ecs
        module, _, name = target.partition(":")
        function: Callable[..., dict[str, Any]] = getattr(import_module(module), name)
        return function


def _category_refused(config: Config, text: str) -> str | None:
    if "category" in text.lower() and config.category_type != "all":
        return (
            f"Zoom refused category type {config.category_type!r} ({text}); "
            f"Zoom documents: {ZOOM_DOCUMENTED_CATEGORIES}; set ZOOM_CATEGORY_TYPE (--category-type) to one of them"
        )
    return None


CLASSIC_SCOPE = "report:read:admin"

OPERATIONS = Stream(
    "operations",
    "operation logs",
    Report("/report/operationlogs", "operation_logs", ("report:read:operation_logs:admin", CLASSIC_SCOPE),
           "Reports > Admin Activity Logs (view)"),
    EventMapping("zoom.operation", "zoom_oplog_shipper.streams.operations.ecs:to_ecs",
                 "zoom_oplog_shipper.streams.operations.ocsf:to_ocsf"),
    query=lambda config: {"category_type": config.category_type},
    partition=lambda config: config.category_type,
    refused=_category_refused,
)  # fmt: skip

ACTIVITIES = Stream(
    "activities",
    "sign-in/sign-out activity logs",
    Report("/report/activities", "activity_logs", ("report:read:user_activities:admin", CLASSIC_SCOPE),
           "Reports > User activity reports > Sign In/Sign Out (view)"),
    EventMapping("zoom.activity", "zoom_oplog_shipper.streams.activities.ecs:to_ecs_activity",
            "zoom_oplog_shipper.streams.activities.ocsf:to_ocsf_activity"),
)  # fmt: skip

STREAMS = (OPERATIONS, ACTIVITIES)
BY_KEY = {s.key: s for s in STREAMS}


def stream_of(config: Config) -> Stream:
    """The stream a run's settings select."""
    return BY_KEY[config.stream]
