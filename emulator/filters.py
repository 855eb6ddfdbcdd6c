"""Rule-based audit filters: definitions, account assignments and the filter functions.

State lives in ``<log_dir>/emulator-filters.json`` (the emulator's stand-in for the
``mysql.audit_log_filter`` / ``mysql.audit_log_user`` tables), so a restart keeps it.

Evaluation supports what the pipeline uses: ``{"filter": {"log": true|false}}``, ``{"filter": {}}``
(log everything) and ``class`` items with optional ``event`` lists and ``log`` flags. Items with
``field``/``and``/``or``/``not`` conditions are treated as "log" (the conservative choice).

Traps:
    * No filter assigned (no entry for the account nor for ``%``) logs nothing, as on a real
      server with rule-based filtering.
    * Assignments apply to **new** sessions; a session keeps the filter it started with.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from emulator.errors import UdfError

STATE_FILE = "emulator-filters.json"
ER_CANT_INITIALIZE_UDF = 1123


def _evaluate(rule: Any, klass: str, event: str) -> bool:
    if not isinstance(rule, dict):
        return True
    body = rule.get("filter", rule)
    if not isinstance(body, dict):
        return True
    classes = body.get("class")
    default = bool(body.get("log", classes is None))
    if classes is None:
        return default
    for item in classes if isinstance(classes, list) else [classes]:
        if not isinstance(item, dict):
            continue
        names = item.get("name")
        names = names if isinstance(names, list) else [names]
        if klass not in names:
            continue
        events = item.get("event")
        if events is None:
            return bool(item.get("log", True))
        for ev in events if isinstance(events, list) else [events]:
            if isinstance(ev, dict):
                ev_names = ev.get("name")
                ev_names = ev_names if isinstance(ev_names, list) else [ev_names]
                if event in ev_names:
                    return bool(ev.get("log", item.get("log", True)))
        return bool(default)
    return default


class FilterStore:
    """Filters and assignments of one emulated server (thread-safe, persisted on change)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / STATE_FILE
        self._lock = threading.Lock()
        self.filters: dict[str, dict[str, Any]] = {}
        self.users: dict[tuple[str, str], str] = {}
        self.load()

    def load(self) -> None:
        """(Re)load the persisted state (``audit_log_filter_flush``)."""
        with self._lock:
            if self.path.exists():
                state = json.loads(self.path.read_text(encoding="utf-8"))
                self.filters = state["filters"]
                self.users = {(u, h): f for u, h, f in state["users"]}

    def _save(self) -> None:
        state = {
            "filters": self.filters,
            "users": [[u, h, f] for (u, h), f in sorted(self.users.items())],
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def set_filter(self, name: str, definition: str) -> str:
        """``audit_log_filter_set_filter``: ``OK`` or an ``ERROR: ...`` string (replaces)."""
        if not name:
            return "ERROR: Filter name cannot be empty."
        try:
            parsed = json.loads(definition)
        except ValueError:
            return "ERROR: JSON parsing error."
        if not isinstance(parsed, dict) or not isinstance(parsed.get("filter"), dict):
            return "ERROR: Incorrect rule definition."
        with self._lock:
            ident = self.filters.get(name, {}).get("id") or 1 + max(
                (f["id"] for f in self.filters.values()), default=0
            )
            self.filters[name] = {"id": ident, "definition": definition}
            self._save()
        return "OK"

    def set_user(self, account: str, name: str) -> str:
        """``audit_log_filter_set_user('user@host' or '%', filter)``."""
        user, host = split_account(account)
        if not user:
            return "ERROR: User name cannot be empty."
        with self._lock:
            if name not in self.filters:
                return f"ERROR: Unknown filter name '{name}'."
            self.users[(user, host)] = name
            self._save()
        return "OK"

    def remove_filter(self, name: str) -> str:
        """``audit_log_filter_remove_filter``: drops the filter and its assignments."""
        with self._lock:
            self.filters.pop(name, None)
            self.users = {k: v for k, v in self.users.items() if v != name}
            self._save()
        return "OK"

    def remove_user(self, account: str) -> str:
        """``audit_log_filter_remove_user('user@host')``."""
        with self._lock:
            self.users.pop(split_account(account), None)
            self._save()
        return "OK"

    def for_account(self, user: str, host: str = "%") -> tuple[int, Any | None]:
        """The filter a new session of ``user@host`` gets: ``(filter id, rule)``; ``(0, None)``."""
        with self._lock:
            name = self.users.get((user, host)) or self.users.get(("%", ""))
            if name is None or name not in self.filters:
                return 0, None
            entry = self.filters[name]
            return int(entry["id"]), json.loads(entry["definition"])

    def rows_filter(self) -> list[dict[str, Any]]:
        """Rows of ``mysql.audit_log_filter`` (NAME, FILTER)."""
        with self._lock:
            return [{"NAME": n, "FILTER": f["definition"]} for n, f in sorted(self.filters.items())]

    def rows_user(self) -> list[dict[str, Any]]:
        """Rows of ``mysql.audit_log_user`` (USER, HOST, FILTERNAME)."""
        with self._lock:
            return [
                {"USER": u, "HOST": h, "FILTERNAME": f} for (u, h), f in sorted(self.users.items())
            ]


def logs(rule: Any | None, klass: str, event: str) -> bool:
    """Whether a session with ``rule`` writes a ``klass``/``event`` event."""
    return rule is not None and _evaluate(rule, klass, event)


def split_account(account: str) -> tuple[str, str]:
    """``'u@h'`` → (u, h); ``'%'`` → (``%``, ``""``), the default account."""
    if account == "%":
        return "%", ""
    user, _, host = account.rpartition("@") if "@" in account else (account, "", "%")
    return user.strip("'`\""), (host or "%").strip("'`\"")


def filter_function(store: FilterStore, name: str, args: list[str | None]) -> str:
    """Run one filter function; returns its string result.

    Raises:
        UdfError: 1123 for a wrong argument list, as a UDF's init function reports it.
    """
    arity = {
        "audit_log_filter_set_filter": 2,
        "audit_log_filter_set_user": 2,
        "audit_log_filter_remove_filter": 1,
        "audit_log_filter_remove_user": 1,
        "audit_log_filter_flush": 0,
    }[name]
    if len(args) != arity or any(a is None for a in args):
        raise UdfError(
            ER_CANT_INITIALIZE_UDF, f"Can't initialize function '{name}'; Wrong argument list."
        )
    a = [x or "" for x in args]
    if name == "audit_log_filter_set_filter":
        return store.set_filter(a[0], a[1])
    if name == "audit_log_filter_set_user":
        return store.set_user(a[0], a[1])
    if name == "audit_log_filter_remove_filter":
        return store.remove_filter(a[0])
    if name == "audit_log_filter_remove_user":
        return store.remove_user(a[0])
    store.load()
    return "OK"
