"""The log types: each is one `Stream` declaration of what differs; the engine owns what is shared.

A stream names its report endpoint (`Endpoint`: path, the field its records come in, the scopes
`check` looks for), the query parameters it adds, where its state lives, and its mappers (in its
own package beside this one: `streams.operations`, `streams.activities`). Windows, paging, page-token restarts,
learned API facts, dedupe, resume and the order of durability are the engine's and the same for
every stream. The simulator declares the same endpoints, keyed by `Stream.key`.

Start-up reads this module (the settings derive `--stream` and `--category-type` from it), so it
imports no mapper: a stream's mappers are imported by the run that maps its records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zoom_oplog_shipper.formats import FORMATS
from zoom_oplog_shipper.mapping import EventMapping, Mapper

if TYPE_CHECKING:
    from zoom_oplog_shipper.config import Config

#: The operation logs' categories (`category_type`) as Zoom documents them.
ZOOM_CATEGORIES = (
    "all",
    "user",
    "user_settings",
    "account",
    "billing",
    "im",
    "recording",
    "phone_contacts",
    "webinar",
    "sub_account",
    "role",
    "zoom_rooms",
)
#: What `--category-type` accepts: Zoom's values plus ``admin``, which the connector documentation lists.
CATEGORY_TYPES = (*ZOOM_CATEGORIES, "admin")


@dataclass(frozen=True)
class Endpoint:
    """The Zoom report endpoint a stream reads, and what reading it takes."""

    #: Under the API base URL.
    path: str
    #: The response field that holds the page's records.
    records_field: str
    #: Either one is enough to read the report (granular first, then classic).
    scopes: tuple[str, ...]
    #: The Zoom role permission the app owner needs, for the no-permission message.
    permission: str


@dataclass(frozen=True)
class Stream:
    """One log type: everything about it that differs from the other log types."""

    #: `--stream` value, state partition and simulator key.
    key: str
    #: What a person calls it, in messages.
    title: str
    endpoint: Endpoint
    #: The stream's own mapper of each output format (a format with one mapper for every stream,
    #: ``raw``, needs none), imported when a run maps: start-up stays fast.
    mappers: Callable[[], EventMapping]
    #: Query parameters the stream adds to `from`, `to`, `page_size` and `next_page_token`.
    query: Callable[[Config], dict[str, str]] = field(default=lambda _config: {})
    #: The partition a setting selects, one store (and lock) each: the operation logs' category;
    #: "" for a stream with one store per account (see `partition_key`).
    partition: Callable[[Config], str] = field(default=lambda _config: "")
    #: A message for a page-one refusal that is the user's setting's fault, else None.
    refused: Callable[[Config, str], str | None] = field(default=lambda _config, _text: None)

    def partition_key(self, config: Config) -> str:
        """This run's partition, the key of its store: the one a setting selects, else the stream's key.

        The operation logs' stores are named by category alone, as before there were streams.
        """
        return self.partition(config) or self.key

    def state_path(self, config: Config) -> Path:
        """This run's store: one per account and partition, with its own lock beside it."""
        from zoom_oplog_shipper.state import state_file

        return state_file(config.state_dir, config.account_id, self.partition_key(config))

    def mapper(self, output_format: str) -> Mapper:
        """The function that maps this stream's records to ``output_format``."""
        fmt = FORMATS[output_format]
        mapper = self.mappers().get(fmt.name, fmt.mapper)
        if mapper is None:
            msg = f"the {self.title} have no {fmt.name} mapper; declare one in the stream's mappers"
            raise LookupError(msg)
        return mapper


def _category_refused(config: Config, text: str) -> str | None:
    if "category" in text.lower() and config.category_type != "all":
        return (
            f"Zoom refused category type {config.category_type!r} ({text}); "
            f"Zoom documents: {', '.join(ZOOM_CATEGORIES)}; set ZOOM_CATEGORY_TYPE (--category-type) to one of them"
        )
    return None


def _operations_mappers() -> EventMapping:
    from zoom_oplog_shipper.streams.operations import ecs, ocsf

    return {"ecs": ecs.to_ecs, "ocsf": ocsf.to_ocsf}


def _activities_mappers() -> EventMapping:
    from zoom_oplog_shipper.streams.activities import ecs, ocsf

    return {"ecs": ecs.to_ecs, "ocsf": ocsf.to_ocsf}


CLASSIC_SCOPE = "report:read:admin"

#: The admin operation logs (Admin Activity Logs in Zoom's web portal).
OPERATION_LOGS = Endpoint(
    "/report/operationlogs", "operation_logs", ("report:read:operation_logs:admin", CLASSIC_SCOPE),
    "Reports > Admin Activity Logs (view)",
)  # fmt: skip
#: The sign-in and sign-out activity logs.
ACTIVITY_LOGS = Endpoint(
    "/report/activities", "activity_logs", ("report:read:user_activities:admin", CLASSIC_SCOPE),
    "Reports > User activity reports > Sign In/Sign Out (view)",
)  # fmt: skip

OPERATIONS = Stream(
    "operations", "operation logs", OPERATION_LOGS, _operations_mappers,
    query=lambda config: {"category_type": config.category_type},
    partition=lambda config: config.category_type,
    refused=_category_refused,
)  # fmt: skip
ACTIVITIES = Stream("activities", "sign-in/sign-out activity logs", ACTIVITY_LOGS, _activities_mappers)

STREAMS = (OPERATIONS, ACTIVITIES)
BY_KEY = {s.key: s for s in STREAMS}
#: The `--stream` values.
STREAM_KEYS = tuple(BY_KEY)


def stream_of(config: Config) -> Stream:
    """The stream a run's settings select."""
    return BY_KEY[config.stream]
