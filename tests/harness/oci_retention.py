"""Retention rules for the OCI test server (``oci_server``): create, list, get, delete.

The shapes are the SDK's (``oci.object_storage.models``): ``CreateRetentionRuleDetails``
``{displayName, duration: {timeAmount, timeUnit: DAYS|YEARS}, timeRuleLocked}`` in,
``RetentionRule`` / ``RetentionRuleCollection {items}`` out. Like the service:

- a rule is active from its creation; one with a duration protects each object younger than
  it (by last modification), one without (indefinite) protects every object;
- a protected object cannot be deleted or overwritten (a plain PUT or a multipart commit): 409
  ``Conflict`` (an ``if-none-match`` write is refused first with 412, as for any existing
  object);
- a rule is locked once ``timeRuleLocked`` has passed; a locked rule cannot be deleted (409);
  ``timeRuleLocked`` without a duration is refused (400 ``InvalidParameter``).

Sources (checked 2026-12-07): OCI's "Object Storage Data Retention Rules" (per-object duration
from Last Modified; a rule is active at creation; the lock only guards the rule itself, after a
mandatory 14-day delay), the SDK's ``CreateRetentionRuleDetails`` (a lock time without a
duration is an error) and OCI's "API Errors" page (409 ``Conflict``: the resource's state
conflicts with the request, not transient, do not retry). None of them names the code the
service returns for a delete or overwrite refused by a rule: 409 ``Conflict`` is this server's
reading, so the uploader relies on the status only, never on the code.

Deviation: the lock time is not required to lie 14 days ahead (tests set past times to act as
if it had passed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_UNIT = {"DAYS": timedelta(days=1), "YEARS": timedelta(days=365)}


def iso(moment: datetime) -> str:
    """The service's timestamp format."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Rule:
    id: str
    display_name: str
    duration: dict[str, Any] | None
    time_rule_locked: datetime | None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    etag: str = field(default_factory=lambda: uuid.uuid4().hex)

    def locked(self, now: datetime) -> bool:
        return self.time_rule_locked is not None and self.time_rule_locked <= now

    def protects(self, modified: float, now: datetime) -> bool:
        if self.duration is None:
            return True
        span = _UNIT[self.duration["timeUnit"]] * int(self.duration["timeAmount"])
        return datetime.fromtimestamp(modified, UTC) + span > now

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "duration": self.duration,
            "etag": self.etag,
            "timeRuleLocked": iso(self.time_rule_locked) if self.time_rule_locked else None,
            "timeCreated": iso(self.created),
            "timeModified": iso(self.created),
        }


class Rules:
    """The rules of every bucket (guarded by the server's lock)."""

    def __init__(self) -> None:
        self.by_bucket: dict[str, dict[str, Rule]] = {}

    def clear(self) -> None:
        self.by_bucket.clear()

    def create(self, bucket: str, details: dict[str, Any]) -> Rule:
        duration = details.get("duration")
        if duration is not None and duration.get("timeUnit") not in _UNIT:
            raise ValueError("duration.timeUnit must be DAYS or YEARS")
        if duration is None and details.get("timeRuleLocked"):
            raise ValueError("timeRuleLocked needs a duration (an indefinite rule has no lock)")
        rule = Rule(
            id=f"ocid1.retentionrule.{uuid.uuid4().hex}",
            display_name=details.get("displayName") or "rule",
            duration=duration,
            time_rule_locked=_parse(details.get("timeRuleLocked")),
        )
        self.by_bucket.setdefault(bucket, {})[rule.id] = rule
        return rule

    def blocking(self, bucket: str, modified: float) -> Rule | None:
        """The rule that protects an object last modified at ``modified`` (epoch s), if any."""
        now = datetime.now(UTC)
        for rule in self.by_bucket.get(bucket, {}).values():
            if rule.protects(modified, now):
                return rule
        return None
