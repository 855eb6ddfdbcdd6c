"""``python -m emulator`` / ``auditstream emulator``: serve an audit source, or write a corpus.

Serve (until SIGTERM/SIGINT)::

    python -m emulator --port 3307 --log-dir /tmp/audit [--flavor oracle|percona]
        [--server-uuid UUID] [--backend-dsn mysql://root@127.0.0.1:3306]
        [--user NAME:PASSWORD[:PRIV,...]]... [--audit-log-format JSON|JSONL|NEW|OLD]
        [--server-version 9.4.0-1]

Write a corpus::

    python -m emulator generate --log-dir /tmp/audit --count 1000000 [--seed 1] [--rate N]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from auditstream import log as logsetup
from auditstream.dsn import MySQLDsn
from emulator.accounts import Account
from emulator.server import EmulatorServer
from emulator.state import EmulatorConfig


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a server for containers; tests pass 127.0.0.1
        help="address to listen on (default: all, as mysqld)",
    )
    p.add_argument("--log-dir", type=Path, required=True)
    p.add_argument("--flavor", choices=("oracle", "percona"), default="oracle")
    p.add_argument("--server-uuid")
    p.add_argument("--backend-dsn", help="mysql://user[:pass]@host:port of the backing server")
    p.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:PRIV,...]",
        help="an account (test credentials only); no privilege list means ALL, NONE means none",
    )
    p.add_argument(
        "--component",
        action="store_true",
        help="name variables like the MySQL 9.x / Percona 8.4 components (audit_log.*)",
    )
    p.add_argument(
        "--audit-log-format",
        choices=("JSON", "JSONL", "NEW", "OLD"),
        help="default: JSONL for Percona 9.x, JSON otherwise (JSONL: Percona 8.4.10+ only)",
    )
    p.add_argument(
        "--server-version",
        help="emulated @@version, e.g. 9.4.0-1 (default 8.0.40-commercial / 8.0.39-30)",
    )
    p.add_argument("--log-file", help="audit log file name (default audit.log / audit_filter.log)")
    p.add_argument("--rotate-on-size", type=int, default=0)
    p.add_argument("--compress", action="store_true", help="gzip rotated files")
    p.add_argument("--max-size", type=int, default=0)
    p.add_argument("--prune-seconds", type=int, default=0)
    p.add_argument("--tls-cert", type=Path, help="PEM certificate: offer TLS to clients")
    p.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["generate"]:
        from emulator.generate_cli import main as generate_main

        return generate_main(args_list[1:])
    args = _serve_parser().parse_args(args_list)
    logsetup.setup(json=args.log_json, level=args.log_level)
    try:
        config = _config(args)
    except ValidationError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    server = EmulatorServer(config)
    asyncio.run(_serve(server))
    return 0


def _config(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        log_dir=args.log_dir,
        host=args.host,
        port=args.port,
        flavor=args.flavor,
        server_uuid=args.server_uuid,
        backend_dsn=MySQLDsn.parse(args.backend_dsn) if args.backend_dsn else None,
        users=tuple(Account.parse(u) for u in args.user),
        audit_log_format=args.audit_log_format,
        server_version=args.server_version,
        log_file=args.log_file,
        rotate_on_size=args.rotate_on_size,
        compress=args.compress,
        max_size=args.max_size,
        prune_seconds=args.prune_seconds,
        component=args.component,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )


async def _serve(server: EmulatorServer) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop_soon)
    await server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
