"""Schema checks shared by the mapping tests of both streams: ECS 9.4.0 fields and OCSF model attributes.

ECS: tests/data/ecs_fields.json, a subset of ECS 9.4.0's ecs_flat.yml. OCSF: the attribute walk that
the generated ocsf-emitter models need, since they accept extra keys silently.
"""

from __future__ import annotations

import ipaddress
import json
import types
import typing
from pathlib import Path
from typing import Any

from ocsf_emitter import models as ocsf_models
from ocsf_emitter import validate as ocsf_validate
from py_ocsf_models.events.base_event import BaseEvent
from pydantic import BaseModel

from zoom_oplog_shipper.formats.ecs import ECS_VERSION

ECS = json.loads((Path(__file__).parent / "data" / "ecs_fields.json").read_text())


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted field names (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def assert_ecs_valid(doc: dict[str, Any]) -> None:
    """Every field is an ECS 9.4.0 field of the right shape and value set; category/type pairs, event
    kind, dataset and namespace are ECS's; the ECS version is the one the data file describes."""
    fields = ECS["fields"]
    for name, value in flatten(doc).items():
        if name.startswith("zoom."):
            continue  # the integration's own namespace, outside ECS by design
        assert name in fields, f"{name} is not an ECS 9.4.0 field"
        spec = fields[name]
        values = value if isinstance(value, list) else [value]
        if "array" in spec.get("normalize", []):
            assert isinstance(value, list), f"{name} must be an array"
        else:
            assert not isinstance(value, list | dict), f"{name} must be a scalar"
        if "allowed_values" in spec:
            allowed = {v["name"] for v in spec["allowed_values"]}
            assert set(values) <= allowed, f"{name}: {values} not in {allowed}"
        if spec["type"] == "ip":
            for item in values:
                ipaddress.ip_address(item)
    allowed_kinds = {v["name"] for v in fields["event.kind"]["allowed_values"]}
    assert doc["event"]["kind"] in allowed_kinds
    expected = {v["name"]: set(v["expected_event_types"]) for v in fields["event.category"]["allowed_values"]}
    all_types = {v["name"] for v in fields["event.type"]["allowed_values"]}
    for category in doc["event"]["category"]:
        assert category in expected
        for kind in doc["event"]["type"]:
            assert kind in all_types
            assert kind in expected[category], f"type {kind} is not allowed for category {category}"
    assert "-" not in doc["data_stream"]["dataset"] and "-" not in doc["data_stream"]["namespace"]
    assert doc["event"]["dataset"] == doc["data_stream"]["dataset"]
    assert doc["ecs"]["version"] == ECS_VERSION == ECS["ecs_version"]


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside ``annotation`` (``X | None``, ``list[X]``) and whether it is a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _model_of(arg)
        return None, False
    if origin is list:
        model, _ = _model_of(typing.get_args(annotation)[0])
        return model, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def unknown_attributes(value: Any, model: type[BaseModel], path: str = "") -> list[str]:
    """Attribute names in ``value`` that the generated OCSF model does not define.

    The generated models allow extra keys (OCSF objects are extensible), so a misspelt attribute
    would pass ``model_validate``; this walk catches it. Free-form objects (no fields, such as
    ``unmapped``) and ``Any`` attributes (``entity.data``) are not descended into.
    """
    if not model.model_fields or not isinstance(value, dict):
        return []
    problems: list[str] = []
    for key, item in value.items():
        field = model.model_fields.get(key)
        if field is None:
            problems.append(f"{path}{key}")
            continue
        sub, is_list = _model_of(field.annotation)
        if sub is None:
            continue
        for element in item if is_list and isinstance(item, list) else [item]:
            problems.extend(unknown_attributes(element, sub, f"{path}{key}."))
    return problems


#: The OCSF classes the shipper writes, by ``class_uid``.
OcsfClass = ocsf_models.AccountChange | ocsf_models.Authentication | ocsf_models.EntityManagement
OCSF_MODELS: dict[int, type[OcsfClass]] = {
    3001: ocsf_models.AccountChange,
    3002: ocsf_models.Authentication,
    3004: ocsf_models.EntityManagement,
}


def assert_ocsf_valid(event: dict[str, Any]) -> OcsfClass:
    """Validate ``event`` against its class model, the OCSF invariants and py-ocsf-models."""
    model = OCSF_MODELS[event["class_uid"]]
    # Strict JSON mode: the event must already carry OCSF's types (no "123" standing for 123).
    instance = model.model_validate_json(json.dumps(event), strict=True)
    ocsf_validate(instance)
    # py-ocsf-models types metadata.logged_time as a datetime, not OCSF's epoch ms: lax mode.
    BaseEvent.model_validate(event)
    assert unknown_attributes(event, model) == []
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    return instance
