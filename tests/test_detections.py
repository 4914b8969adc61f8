"""The detection rules (detections/): every rule converts where docs/detections.md says, and the
committed queries are what `python -m detections` makes of the rules today."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detections.convert import CONVERTED, RULES, TARGETS, alerts, generate, load_rules, rule_name, written

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs" / "detections.md"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate()


def test_committed_queries_are_a_fresh_conversion(generated: dict[str, str]) -> None:
    current = written(CONVERTED)
    differ = sorted(name for name in set(generated) | set(current) if generated.get(name) != current.get(name))
    assert differ == [], f"regenerate with `python -m detections`: {differ}"


def test_every_rule_has_what_an_analyst_needs() -> None:
    for path in sorted(RULES.glob("*.yml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("title", "id", "description", "level", "tags", "falsepositives"):
            assert rule.get(key), f"{path.name}: no {key}"
        assert any(tag.startswith("attack.t") for tag in rule["tags"]), f"{path.name}: no ATT&CK technique"
        if "correlation" not in rule:
            assert rule.get("fields"), f"{path.name}: no fields"
            assert rule["logsource"] == {"product": "zoom", "service": rule["logsource"]["service"]}


def test_every_alerting_rule_converts_for_every_backend_but_the_documented_gaps(generated: dict[str, str]) -> None:
    # Lucene has no aggregation (correlations) and no field-to-field comparison; everything else converts.
    missing = {
        (target.name, rule_name(rule))
        for rule in load_rules().rules
        if alerts(rule)
        for target in TARGETS
        if f"{target.name}/{rule_name(rule)}.{target.extension}" not in generated
    }
    lucene_gaps = {
        "zoom_bulk_recording_deletion",
        "zoom_many_users_from_one_address",
        "zoom_mass_user_deletion",
        "zoom_privileged_role_granted_then_removed",
        "zoom_privileged_role_self_granted",
        "zoom_user_sign_in_from_many_addresses",
    }
    assert missing == {("lucene", name) for name in lucene_gaps}
