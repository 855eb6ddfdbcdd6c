"""The ``auditstream`` console script: one front door over the packages' entry points.

Each subcommand is a function ``(argv) -> exit code`` in its own package, imported only when
called, so ``auditstream producer`` never loads the consumer's dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from auditstream.entry import run

#: subcommand -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "producer": ("producer.__main__:main", "stream one audited server into Kafka"),
    "consumer": ("consumer.__main__:main", "write the topic into audit_data (a group member)"),
    "emulator": ("emulator.__main__:main", "serve an emulated MySQL Enterprise Audit source"),
    "verify": ("ops.verify:main", "check the per-server hash chains of the stores"),
    "demo": ("ops.demo.run:main", "run the whole pipeline end to end on embedded components"),
    "reconcile": ("ops.reconcile.command:main", "prove nothing is lost: source vs stores"),
    "setup": ("ops.setup:main", "archive tables, least-privilege accounts, audit filters"),
    "rotate": ("consumer.ops:rotate_main", "rotate audit_data now or when due"),
    "upload": ("consumer.ops:upload_main", "dump, upload and verify every rotated table"),
    "restore": ("consumer.ops:restore_main", "load a dump back into a table"),
    "bookmark": ("ops.bookmark:main", "show or move a producer's bookmark (audited)"),
    "keys": ("ops.keys:main", "generate the Ed25519 key pair that signs checkpoints"),
    "status": (
        "ops.status:main",
        "bookmarks, lag, partitions, rotations and pending uploads",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``auditstream <command> [flags]``; return the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        _usage()
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"auditstream: unknown command {name!r}", file=sys.stderr)
        _usage(sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module, func = target.split(":")
    entry: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module), func)
    return run(entry, rest)


def _usage(stream: object = sys.stdout) -> None:
    lines = [
        "usage: auditstream <command> [flags]   (auditstream <command> --help)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    print("\n".join(lines), file=stream)  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
