"""Every invalid setting of every command: exit code 2 and a message naming the setting.

The cases are derived from the settings classes themselves (each field's type and bounds), so
a new setting is covered the day it is added: numbers that are not numbers or out of bounds,
choices outside their ``Literal``, DSNs, bookmarks, intervals, targets and table names that
do not parse, and passwords given as flags (refused: ``ps`` shows them to every user).
"""

from __future__ import annotations

import importlib
import logging
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import annotated_types
import pytest

from ops.cli import main as cli_main

DSN = "mysql://u@127.0.0.1:1/db"


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    settings: str  # module:Class
    base: tuple[str, ...]


COMMANDS = [
    Command(("producer",), "producer.config:ProducerSettings", (f"--source-dsn={DSN}",)),
    Command(("producer", "setup"), "producer.config:BookmarkSettings", ()),
    Command(("consumer",), "consumer.config:ConsumerSettings", (f"--archive-dsn={DSN}",)),
    Command(("consumer", "setup"), "consumer.config:ArchiveSettings", ()),
    Command(("consumer", "rotate"), "consumer.opsconfig:RotateSettings", (f"--archive-dsn={DSN}",)),
    Command(("consumer", "upload"), "consumer.opsconfig:UploadSettings", (f"--archive-dsn={DSN}",)),
    Command(
        ("consumer", "restore"),
        "consumer.opsconfig:RestoreSettings",
        (f"--archive-dsn={DSN}", "--table=audit_data_20250101_000000"),
    ),
    Command(
        ("reconcile",),
        "ops.reconcile.config:ReconcileSettings",
        (f"--archive-dsn={DSN}", "--target=file:///nonexistent"),
    ),
    Command(("verify",), "ops.verify.config:VerifySettings", ("--target=file:///nonexistent",)),
    Command(("status",), "ops.status:StatusSettings", (f"--archive-dsn={DSN}",)),
    Command(("demo",), "ops.demo.run:DemoSettings", ()),
    Command(("setup",), "ops.setup:SetupSettings", ("--print-sql",)),
    Command(("keys",), "ops.keys:KeysSettings", ("--out=/nonexistent/seal.key",)),
    Command(
        ("bookmark", "set"),
        "ops.bookmark:BookmarkSettings",
        (f"--bookmark-dsn={DSN}", "--server-uuid=u", "--reason=t", "--to=2025-01-01 00:00:00#0"),
    ),
    Command(("rotate",), "consumer.opsconfig:RotateSettings", (f"--archive-dsn={DSN}",)),
    Command(("upload",), "consumer.opsconfig:UploadSettings", (f"--archive-dsn={DSN}",)),
    Command(
        ("restore",),
        "consumer.opsconfig:RestoreSettings",
        (f"--archive-dsn={DSN}", "--table=audit_data_20250101_000000"),
    ),
]

#: Values no field of this kind accepts, by field name (checked before the type rules).
BY_NAME = {
    "dsn": "not-a-dsn",
    "user": "bad user; --",
    "to": "tomorrow",
    "host": "bad host'",
    "start_from": "yesterday",
    "interval": "fortnight",
    "target": "ftp://example/x",
    "table": "users; DROP TABLE audit_data",
    "start": "soon",
    "end": "later",
    "since": "soon",
    "until": "later",
}


def invalid_values(name: str, info: Any) -> Iterator[str]:
    """Values the field must refuse."""
    for key, value in BY_NAME.items():
        if name == key or name.endswith("_" + key):
            yield value
            return
    kind = info.annotation
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Literal:
        yield "bogus-choice"
        return
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    if base in (int, float):
        yield "not-a-number"
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Ge):
                yield str(meta.ge - 1)  # type: ignore[operator]  # numbers here
            elif isinstance(meta, annotated_types.Gt):
                yield str(meta.gt)
            elif isinstance(meta, annotated_types.Le):
                yield str(meta.le + 1)  # type: ignore[operator]  # numbers here


#: Cases that fail today, reported to their owners (see the session report): strict xfails,
#: so the day one is fixed the test says so and the entry goes.
KNOWN: dict[str, str] = {}


def cases() -> Iterator[Any]:
    for cmd in COMMANDS:
        module, cls = cmd.settings.split(":")
        settings = getattr(importlib.import_module(module), cls)
        for name, info in settings.model_fields.items():
            flag = "--" + (info.alias or name).replace("_", "-")
            if info.annotation is not None and "SecretStr" in repr(info.annotation):
                yield pytest.param(cmd, flag, "s3cr3t-on-the-command-line", id=f"{cmd.argv}{flag}")
                continue
            for value in invalid_values(name, info):
                case = f"{' '.join(cmd.argv)} {flag}={value}"
                marks = (
                    [pytest.mark.xfail(strict=True, reason=KNOWN[case])] if case in KNOWN else []
                )
                yield pytest.param(cmd, flag, value, id=case, marks=marks)


@pytest.fixture
def keep_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize(("cmd", "flag", "value"), list(cases()))
def test_an_invalid_setting_exits_2_naming_it(
    cmd: Command, flag: str, value: str, capsys: pytest.CaptureFixture[str], keep_logging: None
) -> None:
    argv = [*cmd.argv, *cmd.base, f"{flag}={value}"]
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse refuses some values itself
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2, f"exit code {code}: {err}"
    env = "AUDITSTREAM_" + flag[2:].replace("-", "_").upper()
    assert flag in err or env in err, f"the message does not name {flag}: {err}"
    if "password" in flag:
        assert value not in err


def test_every_command_is_covered() -> None:
    from ops.cli import COMMANDS as REGISTERED

    covered = {c.argv[0] for c in COMMANDS}
    assert set(REGISTERED) - covered <= {"emulator"}, "a command has no invalid-setting cases"
