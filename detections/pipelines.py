"""Processing pipelines: a rule's ECS field names and semantics, mapped to each destination.

The rules are written against the fields the program prints (ECS, ``--format ecs``). What each
destination needs on top:

- Elasticsearch, Lucene: a condition on ``event.dataset`` (``zoom.operation`` / ``zoom.activity``);
  field names as printed. An array is any-value already.
- Elasticsearch, ES|QL: the data stream (``logs-zoom.operation-*`` / ``logs-zoom.activity-*``).
  ES|QL gives null for a comparison on a multi-valued field, so every array field the rule reads
  is expanded first (``| mv_expand``), and a negated condition counts an absent field as false.
- Splunk: the sourcetype (``zoom:operation`` / ``zoom:activity``, configs/splunk/props.conf); JSON
  arrays are the multi-value fields ``name{}`` (``zoom.operation.changes{}.setting_to``) that
  ``KV_MODE = json`` makes; ``user.name`` and ``source.ip`` are the CIM fields ``user`` and ``src``
  that props.conf computes.
- Loki: the shipped labels (``{job="zoom-oplog-shipper", dataset="zoom.operation"}``, Vector and
  Fluent Bit configs) and the ``json`` parser. That parser skips arrays, so each array the rule
  reads is extracted as its JSON text (``| json tags="tags"``) and matched by a regular expression
  that holds inside one element (one change, for ``zoom.operation.changes``).
- SQLite (the tests): a condition on ``event.dataset``; :class:`EcsSqliteBackend` gives every field
  Elasticsearch's any-value semantics (:mod:`detections.evaluate`).

The placeholder ``%org_domains%`` is filled from ``detections/vars.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline, QueryPostprocessingItem
from sigma.processing.postprocessing import QueryPostprocessingTransformation
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    PreprocessingTransformation,
    SetStateTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.processing.transformations.base import ValueTransformation
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaRegularExpression, SigmaString, SigmaType, SpecialChars

from detections.evaluate import any_value

HERE = Path(__file__).parent
VARS = HERE / "vars.yml"

#: Rule log source service -> (event.dataset, Elasticsearch data streams, Splunk sourcetype).
STREAMS = {
    "operation": ("zoom.operation", "logs-zoom.operation-*", "zoom:operation"),
    "activity": ("zoom.activity", "logs-zoom.activity-*", "zoom:activity"),
}
#: Loki's stream selector, from the labels the shipped Vector and Fluent Bit configs set.
LOKI_SELECTOR = '{{job="zoom-oplog-shipper",dataset="{dataset}"}}'
#: Fields the program prints as JSON arrays of scalars.
ARRAY_FIELDS = frozenset(
    {
        "tags",
        "event.category",
        "event.type",
        "related.user",
        "related.ip",
        "user.target.roles",
        "user.changes.roles",
        "zoom.operation.disabled_controls",
    }
)
#: The array of objects: its fields are ``zoom.operation.changes.<key>``.
CHANGES = "zoom.operation.changes"
#: CIM fields props.conf computes from ECS fields.
SPLUNK_CIM = {"user.name": "user", "source.ip": "src"}


def is_array(field: str) -> bool:
    """Whether the program prints ``field`` as a list (of scalars, or inside the list of changes)."""
    return field in ARRAY_FIELDS or field.startswith(CHANGES + ".")


def load_vars(path: Path = VARS) -> dict[str, Any]:
    """The placeholder values (``org_domains``...) from detections/vars.yml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping of placeholder names to values"
        raise ValueError(msg)
    return data


def _for_stream(service: str) -> list[RuleProcessingCondition]:
    return [LogsourceCondition(product="zoom", service=service)]


def _per_stream(
    identifier: str, transformation: Callable[[str, str, str], PreprocessingTransformation]
) -> list[ProcessingItem]:
    """One processing item per stream: ``transformation(dataset, data streams, sourcetype)`` for its rules."""
    return [
        ProcessingItem(
            identifier=f"{identifier}_{service}",
            transformation=transformation(*names),
            rule_conditions=_for_stream(service),
        )
        for service, names in STREAMS.items()
    ]


def _dataset_conditions(identifier: str) -> list[ProcessingItem]:
    return _per_stream(
        f"{identifier}_dataset",
        lambda dataset, _, __: AddConditionTransformation({"event.dataset": dataset}, name="zoom_dataset"),
    )


@dataclass
class NoOutputFields(PreprocessingTransformation):
    """Leave the rule's ``fields`` (documentation: what the rule needs) out of the query.

    Backends turn them into a Splunk ``| table``, a Loki ``line_format`` (which replaces the log
    line) or ES|QL ``values()`` columns, each with the rule's field names rather than the
    destination's.
    """

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            rule.fields = []


def _placeholders(identifier: str) -> list[ProcessingItem]:
    return [
        ProcessingItem(identifier=f"{identifier}_no_output_fields", transformation=NoOutputFields()),
        ProcessingItem(identifier=f"{identifier}_placeholders", transformation=ValueListPlaceholderTransformation()),
    ]


def rule_fields(rule: SigmaRule | SigmaCorrelationRule) -> list[str]:
    """Every field a rule's detections read (after field mapping), the referenced rules' for a correlation."""
    if isinstance(rule, SigmaCorrelationRule):
        found = [field for reference in rule.rules or [] for field in rule_fields(reference.rule)]
    else:
        found = [field for detection in rule.detection.detections.values() for field in _fields(detection)]
    return list(dict.fromkeys(found))


def _fields(detection: SigmaDetection) -> Iterator[str]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _fields(item)
        elif item.field is not None:
            yield item.field


# --- Elasticsearch ---------------------------------------------------------------------------


def lucene_pipeline() -> ProcessingPipeline:
    """Elasticsearch Lucene (Kibana query string): ECS names, the dataset as a condition."""
    return ProcessingPipeline(
        name="zoom-oplog-shipper ECS, Elasticsearch Lucene",
        priority=20,
        items=[*_dataset_conditions("lucene"), *_placeholders("lucene")],
        vars=load_vars(),
    )


@dataclass
class EsqlArrays(QueryPostprocessingTransformation):
    """``| mv_expand`` every array field the rule reads; a negated condition treats null as false.

    ES|QL returns null for a comparison on a multi-valued field (and ``not null`` is null, which
    drops the row), where Elasticsearch's other queries match when any value matches.
    """

    def apply(self, rule: SigmaRule | SigmaCorrelationRule, query: Any) -> Any:
        super().apply(rule, query)
        expand = "".join(f"| mv_expand {field} " for field in rule_fields(rule) if is_array(field))
        query = _null_safe_not(str(query))
        head, sep, rest = query.partition(" | where ")
        return f"{head} {expand}| where {rest}" if sep and expand else query


def _null_safe_not(query: str) -> str:
    """``not (x)`` -> ``not coalesce((x), false)``: an absent field makes ``x`` null, not false."""
    out: list[str] = []
    at = 0
    while (start := query.find("not (", at)) >= 0:
        depth, end = 0, start + 4
        for end in range(start + 4, len(query)):
            depth += {"(": 1, ")": -1}.get(query[end], 0)
            if depth == 0:
                break
        inner = _null_safe_not(query[start + 5 : end])
        out.append(f"{query[at:start]}not coalesce(({inner}), false)")
        at = end + 1
    out.append(query[at:])
    return "".join(out)


def esql_pipeline() -> ProcessingPipeline:
    """Elasticsearch ES|QL: the stream's data streams, arrays expanded, null-safe negation."""
    return ProcessingPipeline(
        name="zoom-oplog-shipper ECS, Elasticsearch ES|QL",
        priority=20,
        items=[
            *_per_stream("esql_index", lambda _, index, __: SetStateTransformation("index", index)),
            *_placeholders("esql"),
        ],
        postprocessing_items=[QueryPostprocessingItem(EsqlArrays(), identifier="esql_arrays")],
        vars=load_vars(),
    )


# --- Splunk ----------------------------------------------------------------------------------


def splunk_field(field: str) -> str:
    """The Splunk field of an ECS field in ``KV_MODE = json`` events (arrays are ``name{}``)."""
    if field in SPLUNK_CIM:
        return SPLUNK_CIM[field]
    if field.startswith(CHANGES + "."):
        return f"{CHANGES}{{}}.{field.removeprefix(CHANGES + '.')}"
    return f"{field}{{}}" if field in ARRAY_FIELDS else field


@dataclass
class SplunkFields(PreprocessingTransformation):
    """Rename every field of the rule (and of a correlation's group-by and value fields) with :func:`splunk_field`."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaCorrelationRule):
            if rule.group_by:
                rule.group_by = [splunk_field(field) for field in rule.group_by]
            condition = rule.condition
            if isinstance(condition, SigmaCorrelationCondition) and isinstance(condition.fieldref, str):
                condition.fieldref = splunk_field(condition.fieldref)
            return
        mapping: dict[str | None, str | list[str]] = {}
        for field in rule_fields(rule):
            if splunk_field(field) != field:
                mapping[field] = splunk_field(field)
        FieldMappingTransformation(mapping).apply(rule)


def splunk_pipeline() -> ProcessingPipeline:
    """Splunk SPL: the sourcetype, array fields as ``name{}``, CIM ``user`` and ``src``."""
    return ProcessingPipeline(
        name="zoom-oplog-shipper ECS, Splunk",
        priority=20,
        items=[
            *_per_stream(
                "splunk_sourcetype",
                lambda _, __, sourcetype: AddConditionTransformation(
                    {"sourcetype": sourcetype}, name="zoom_sourcetype"
                ),
            ),
            ProcessingItem(identifier="splunk_fields", transformation=SplunkFields()),
            *_placeholders("splunk"),
        ],
        vars=load_vars(),
    )


# --- Loki ------------------------------------------------------------------------------------


def loki_label(field: str) -> str:
    """The label Loki's json parser gives a field: ``user.target.email`` -> ``user_target_email``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", field)


def _json_pattern(value: SigmaString) -> str:
    """A Sigma string as a regular expression over a JSON string's text (wildcards stay inside it)."""
    parts: list[str] = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            parts.append(r'(?:[^"\\]|\\.)*')
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append(r'(?:[^"\\]|\\.)')
        else:
            parts.append(re.escape(str(part)).replace('"', r"\\\""))
    return "".join(parts)


@dataclass
class LokiArrayValues(ValueTransformation):
    """A value of an array field as a regular expression over the array's JSON text, inside one element.

    ``tags: security-control-disabled`` -> ``tags=~"(?i).*[\\[,]"security-control-disabled"[,\\]].*"``;
    ``zoom.operation.changes.setting_to: x`` -> ``zoom_operation_changes=~"(?i).*"setting_to":"x".*"``
    (one change: a string ends at its quote).
    """

    def apply_value(self, field: str | None, val: SigmaType) -> SigmaRegularExpression | None:
        if field is None or not is_array(field) or not isinstance(val, SigmaString):
            return None
        pattern = _json_pattern(val)
        if field.startswith(CHANGES + "."):
            key = field.removeprefix(CHANGES + ".")
            return SigmaRegularExpression(f'(?i).*"{key}":"{pattern}".*')
        return SigmaRegularExpression(f'(?i).*[\\[,]"{pattern}"[,\\]].*')


@dataclass
class LokiArrayFields(PreprocessingTransformation):
    """Extract each array field the rule reads as one label holding its JSON text; set the stream and parser."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaCorrelationRule):
            return
        arrays = list(dict.fromkeys(_array_root(field) for field in rule_fields(rule) if is_array(field)))
        extra = ", ".join(f'{loki_label(field)}="{field}"' for field in arrays)
        rule.custom_attributes["loki_parser"] = f"json | json {extra}" if extra else "json"
        dataset = STREAMS[str(rule.logsource.service)][0]
        rule.custom_attributes["logsource_loki_selection"] = LOKI_SELECTOR.format(dataset=dataset)
        mapping: dict[str | None, str | list[str]] = {
            field: CHANGES for field in rule_fields(rule) if field.startswith(CHANGES + ".")
        }
        if mapping:
            FieldMappingTransformation(mapping).apply(rule)


def _array_root(field: str) -> str:
    return CHANGES if field.startswith(CHANGES + ".") else field


def loki_pipeline() -> ProcessingPipeline:
    """Loki LogQL: the shipped labels, the json parser, arrays as their JSON text."""
    return ProcessingPipeline(
        name="zoom-oplog-shipper ECS, Loki",
        priority=20,
        items=[
            *_placeholders("loki"),
            ProcessingItem(identifier="loki_array_values", transformation=LokiArrayValues()),
            ProcessingItem(identifier="loki_array_fields", transformation=LokiArrayFields()),
        ],
        vars=load_vars(),
    )


# --- SQLite, for the tests -------------------------------------------------------------------


def sqlite_pipeline() -> ProcessingPipeline:
    """SQLite over :func:`detections.evaluate.load`'s table: ECS names, the dataset as a condition."""
    return ProcessingPipeline(
        name="zoom-oplog-shipper ECS, SQLite with Elasticsearch semantics",
        priority=20,
        items=[*_dataset_conditions("sqlite"), *_placeholders("sqlite")],
        vars=load_vars(),
    )


class EcsSqliteBackend(sqliteBackend):
    """pySigma's SQLite backend on a table of JSON lists: each field condition holds when any value does."""

    def __init__(self, **options: Any) -> None:
        super().__init__(sqlite_pipeline(), timestamp_field="@timestamp", **options)  # type: ignore[no-untyped-call]

    def escape_and_quote_field(self, field: str) -> str:
        """Every field quoted, so that :func:`any_value` finds it."""
        return "`" + field.replace("`", "``") + "`"

    def convert_condition_field_eq_val(self, cond: ConditionFieldEqualsValueExpression, state: Any) -> Any:
        """The backend's expression, made true when any value of the field's list makes it true."""
        expression = super().convert_condition_field_eq_val(cond, state)
        return any_value(expression) if isinstance(expression, str) else expression


__all__ = [
    "ARRAY_FIELDS",
    "CHANGES",
    "STREAMS",
    "EcsSqliteBackend",
    "esql_pipeline",
    "is_array",
    "load_vars",
    "loki_pipeline",
    "lucene_pipeline",
    "splunk_pipeline",
    "sqlite_pipeline",
]
