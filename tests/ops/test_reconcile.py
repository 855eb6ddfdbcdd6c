"""``auditstream reconcile`` on the real pipeline: clean when it is, and every planted loss named.

One pipeline (emulated source → Tansu → consumer → MariaDB → dump on a ``file://`` target) is
built per test; then a loss is planted by hand in one store, and the report must name its key.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from confluent_kafka import Producer

from auditstream import mysql as db
from consumer.targets import FileStore
from ops.cli import main as cli_main
from ops.reconcile import KeyRange, Report
from ops.reconcile.index import KeyIndex
from ops.reconcile.keys import digest
from schemas.codec import SingleObjectCodec
from schemas.mapping import to_record
from tests.faults.pipeline import Pipeline, dump_to, make_pipeline, rotate_by_hand
from tests.harness.emulator_fixtures import make_emulator
from tests.harness.mariadb import drop_database

ROTATED = "audit_data_20250601_000000"


@pytest.fixture(scope="module")
def pipe(
    kafka: Any, mysql_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """300 events through producer and consumer, rotated and dumped; then 60 more archived.

    One pipeline for the module (building one takes seconds): the tests run in file order, the
    clean checks first, then the one that plants losses.
    """
    base = tmp_path_factory.mktemp("reconcile")
    emu = make_emulator(base, mysql_server.dsn)
    p = make_pipeline(emu, kafka.bootstrap, mysql_server.dsn, base / "pipe")
    try:
        p.write(300)
        p.producer_once()
        p.consumer_once()
        rotate_by_hand(p.archive, ROTATED)
        target = dump_to(p.archive, ROTATED, base / "objects")
        p.dumps = (FileStore(base / "objects"), target)
        p.write(60)
        p.producer_once()
        p.consumer_once()
        yield p
    finally:
        p.stop_all()
        emu.stop()
        drop_database(p.archive)


def sql(p: Pipeline, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = db.connect(p.archive, autocommit=True)
    try:
        cur: Any = conn.cursor()
        cur.execute(statement, params)
        return list(cur.fetchall()) if cur.with_rows else []
    finally:
        conn.close()


def keys_of(report: Report, kind: str, store: str | None = None) -> set[tuple[str, str]]:
    return {(f.server_uuid, f.position) for f in report.of(kind, store)}


def row_key(p: Pipeline, table: str, offset: int) -> tuple[str, str]:
    ((uuid, ts, id_),) = sql(
        p, f"SELECT server_uuid, ts, id FROM {table} ORDER BY ts, id LIMIT 1 OFFSET {offset}"
    )
    return str(uuid), f"{ts:%Y-%m-%d %H:%M:%S}#{id_}"


def where(key: tuple[str, str]) -> tuple[str, str, int]:
    ts, id_ = key[1].split("#")
    return key[0], ts, int(id_)


KEY = "server_uuid = %s AND ts = %s AND id = %s"


@pytest.fixture
def cli(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command's environment; the root logger is put back afterwards (the command sets it)."""
    password = pipe.emu.archiver_dsn.password
    assert password is not None
    monkeypatch.setenv("AUDITSTREAM_SOURCE_PASSWORD", password.get_secret_value())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_clean_pipeline_agrees_across_every_store(pipe: Pipeline) -> None:
    report = pipe.assert_clean(360)
    assert report.keys == {"source": 360, "topic": 360, "table": 360, "dump": 300}
    assert report.reference == "source"


def test_a_table_dropped_after_its_dump_is_not_a_loss(pipe: Pipeline) -> None:
    sql(pipe, f"RENAME TABLE {ROTATED} TO held_aside")  # as retention's DROP looks to reconcile
    try:
        report = pipe.assert_clean(360)
        assert report.keys["table"] == 60
    finally:
        sql(pipe, f"RENAME TABLE held_aside TO {ROTATED}")


def test_a_range_limits_every_store_alike(pipe: Pipeline) -> None:
    _, start = row_key(pipe, ROTATED, 7)
    ts, id_ = start.split("#")
    report = pipe.check(keys=KeyRange(start=(ts, int(id_)), end=(ts, int(id_) + 2)))
    assert report.clean
    assert 1 <= report.keys["source"] <= 3
    assert report.keys["source"] == report.keys["topic"] == report.keys["table"]


def command(pipe: Pipeline, *extra: str) -> list[str]:
    return [
        "reconcile",
        f"--source-dsn=mysql://archiver@127.0.0.1:{pipe.emu.port}",
        f"--bootstrap-servers={pipe.bootstrap}",
        f"--topic={pipe.topic}", f"--control-topic={pipe.control}", f"--dlq-topic={pipe.dlq}",
        f"--archive-dsn={pipe.archive.url(reveal=True)}",
        f"--target={pipe.dumps[1] if pipe.dumps else ''}",
        f"--work-dir={pipe.workdir}",
        *extra,
    ]  # fmt: skip


def test_the_command_exits_0_when_every_store_agrees(
    pipe: Pipeline, cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(command(pipe)) == 0
    out = capsys.readouterr().out
    assert "OK: every store agrees" in out and "source: 360 keys" in out


def test_planted_losses_are_each_reported_by_key(
    pipe: Pipeline, cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    uuid = pipe.emu.server_uuid
    # a row refused by the consumer (wrong message key) and then gone from the archive
    dead = row_key(pipe, "audit_data", 3)
    ((raw,),) = sql(pipe, f"SELECT raw FROM audit_data WHERE {KEY}", *where(dead))
    produce(pipe, [str(raw)], key=b"not-the-server-uuid")
    pipe.consumer_once()
    sql(pipe, f"DELETE FROM audit_data WHERE {KEY}", *where(dead))
    # a row deleted from audit_data, one from the dumped table, one altered, one duplicated
    deleted = row_key(pipe, "audit_data", 7)
    sql(pipe, f"DELETE FROM audit_data WHERE {KEY}", *where(deleted))
    deleted_rotated = row_key(pipe, ROTATED, 7)
    sql(pipe, f"DELETE FROM {ROTATED} WHERE {KEY}", *where(deleted_rotated))
    altered = row_key(pipe, "audit_data", 11)
    sql(pipe, f"UPDATE audit_data SET raw = CONCAT(raw, ' ') WHERE {KEY}", *where(altered))
    duplicated = row_key(pipe, ROTATED, 20)
    sql(pipe, f"INSERT INTO audit_data SELECT * FROM {ROTATED} WHERE {KEY}", *where(duplicated))
    # a foreign event and an altered copy in the topic
    forged = row_key(pipe, ROTATED, 30)
    _, ts, id_ = where(forged)
    forged_raw = f'{{ "timestamp": "{ts}", "id": {id_}, "class": "x", "event": "forged" }}'
    foreign = '{ "timestamp": "2031-01-01 00:00:00", "id": 0, "class": "x", "event": "y" }'
    produce(pipe, [forged_raw, foreign])
    # a tampered dump object (the second chunk): one line dropped, one event's text changed
    chunk = next(pipe.workdir.parent.glob(f"objects/{ROTATED}/*@1.tsv.zst"))
    reader = zstandard.ZstdDecompressor().stream_reader(chunk.read_bytes())
    lines = reader.read().decode().splitlines(keepends=True)
    dropped_line, changed_line = lines.pop(5), lines[9]
    lines[9] = changed_line.replace('"class"', '"klass"', 1)
    chunk.write_bytes(zstandard.compress("".join(lines).encode()))
    dropped, changed = line_key(dropped_line), line_key(changed_line)

    report = pipe.check(keys=KeyRange(end=("2032-01-01 00:00:00", 0)))
    assert not report.clean
    assert keys_of(report, "dead_lettered", "archive") == {dead}
    assert keys_of(report, "missing", "archive") == {deleted}
    assert keys_of(report, "missing", "table") == {deleted_rotated}
    assert keys_of(report, "altered", "table") == {altered}
    assert keys_of(report, "duplicated", "table") == {duplicated}
    assert keys_of(report, "unexpected", "topic") == {(uuid, "2031-01-01 00:00:00#0")}
    assert keys_of(report, "altered", "topic") == {forged}
    assert any(chunk.name in f.where for f in report.of("object_mismatch"))
    lost_in_dump = keys_of(report, "missing", "dump")
    assert lost_in_dump == {dropped}
    assert keys_of(report, "altered", "dump") == {changed}

    assert cli_main(command(pipe, "--json-output", "--end=2025-06-01 23:59:59")) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["clean"] is False
    assert {"kind": "missing", "store": "archive", "position": deleted[1]}.items() <= next(
        f for f in out["findings"] if f["kind"] == "missing" and f["store"] == "archive"
    ).items()


def line_key(line: str) -> tuple[str, str]:
    fields = line.split("\t")  # server_uuid, ts, id lead the template's columns
    return fields[0], f"{fields[1]}#{fields[2]}"


def produce(pipe: Pipeline, raws: list[str], key: bytes | None = None) -> None:
    """Publish events as the producer would (same codec), optionally under a wrong key."""
    import orjson

    codec = SingleObjectCodec()
    producer = Producer({"bootstrap.servers": pipe.bootstrap})
    uuid = pipe.emu.server_uuid
    for raw in raws:
        value = codec.encode("audit_event", to_record(uuid, raw, orjson.loads(raw)), pipe.topic)
        producer.produce(pipe.topic, key=key or uuid.encode(), value=value)
    assert producer.flush(30) == 0


# --------------------------------------------------------------------------- units


def test_the_index_scans_many_keys_in_order_with_little_python_memory(tmp_path: Path) -> None:
    n = 20_000
    tracemalloc.start()
    try:
        with KeyIndex(tmp_path, cache_mib=8) as index:
            for i in reversed(range(n)):  # out of order, as a topic with re-sends is
                ts = f"2025-06-01 {i // 360_000:02d}:{i // 6000 % 60:02d}:{i // 100 % 60:02d}"
                index.add("topic", "u", ts, i % 100, digest(str(i)), "w", "")
            last = None
            count = 0
            for row in index.rows():
                here = (row.ts, row.id)
                assert last is None or here > last
                last, count = here, count + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes: the keys were held in memory"


def test_percona_flavor_source_reconciles_clean(
    emulator_factory: Any, bootstrap: str, mysql_server: Any, tmp_path: Path
) -> None:
    """Percona: global ids, no session buffer, re-positioning needs a close first."""
    p = make_pipeline(emulator_factory("percona"), bootstrap, mysql_server.dsn, tmp_path)
    try:
        p.write(250)
        p.producer_once()
        p.consumer_once()
        report = p.assert_clean(250)
        _, start = row_key(p, "audit_data", 100)
        ts, id_ = start.split("#")
        ranged = p.check(keys=KeyRange(start=(ts, int(id_)), end=(ts, int(id_) + 9)))
        assert ranged.clean and 1 <= ranged.keys["source"] <= 10
        assert report.keys["topic"] == 250
    finally:
        drop_database(p.archive)
