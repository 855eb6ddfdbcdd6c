"""The sink on the real MariaDB: one transaction per batch, exactly once, bad rows isolated."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from consumer import highwater
from consumer.batch import Batch, DeadLetter, Item
from consumer.decode import prepare
from consumer.errors import ArchiveSchemaError, Fenced
from consumer.rows import Identity
from consumer.sink import AuditRow, Sink, _above, _raised_marks, summarize
from schemas.codec import SingleObjectCodec
from tests.consumer.conftest import START, RecordFactory, event_record

TOPIC, CONTROL = "audit", "control"
SERVER = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
CODEC = SingleObjectCodec()

Query = Callable[..., list[tuple[Any, ...]]]


def batch_of(records: list[dict[str, Any]], first_offset: int, partition: int = 0) -> Batch:
    batch = Batch()
    for n, record in enumerate(records):
        batch.add(
            Item(
                TOPIC,
                partition,
                first_offset + n,
                record["server_uuid"].encode(),
                CODEC.encode("audit_event", record, TOPIC),
                None,
                "audit_event",
                record,
            )
        )
    return batch


class Member:
    """One sink plus the offsets it expects, as the loop keeps them."""

    def __init__(self, dsn: MySQLDsn, method: str = "load") -> None:
        self.sink = Sink(dsn, "test-member", method)  # type: ignore[arg-type]
        self.expected: dict[tuple[str, int], int | None] = {}
        self.dead: list[DeadLetter] = []

    def assign(self, *partitions: int) -> None:
        self.expected.update(self.sink.stored_offsets([(TOPIC, p) for p in partitions]))

    def write(self, batch: Batch) -> Any:
        # As the loop prepares it: for LOAD DATA the compiled reader makes only the lines.
        prepared = prepare(batch, CONTROL, CODEC, lines=self.sink.method == "load")
        result = self.sink.write(prepared, dict(self.expected), self.dead.extend)
        self.expected.update(prepared.next_offsets)
        return result


@pytest.fixture(params=["load", "insert"])
def member(request: pytest.FixtureRequest, archive: MySQLDsn) -> Any:
    m = Member(archive, request.param)
    m.assign(0, 1)
    yield m
    m.sink.close()


def test_rows_and_offsets_land_together_and_raw_is_byte_exact(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 31)
    result = member.write(batch_of(recs, 0))
    assert (result.inserted, result.duplicates, result.dead) == (31, 0, [])
    stored = sql_query("SELECT raw, ts, id, kafka_offset FROM audit_data ORDER BY kafka_offset")
    assert [r[0] for r in stored] == [r["raw"] for r in recs]
    assert stored[0][1] == START.replace(tzinfo=None)
    assert sql_query(
        "SELECT topic, kafka_partition, next_offset FROM audit_offsets ORDER BY kafka_partition"
    ) == [(TOPIC, 0, 31), (TOPIC, 1, None)]
    # Typed columns from a real event: the sample's INSERT on audit_test_table.
    row = sql_query(
        "SELECT table_db, table_name, query, login_ip FROM audit_data WHERE class = 'table_access'"
        " ORDER BY ts, id LIMIT 1"
    )
    assert row == [
        (
            "audit_test",
            "audit_test_table",
            "INSERT INTO audit_test_table values ('John', 'Smith')",
            "192.168.2.5",
        )
    ]


def test_awkward_text_round_trips_exactly(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 3)
    awkward = "select '\\N', 'tab\there', 'line\nbreak', 'nul\x00', 'back\\slash' -- ‘q’ 😀"
    recs[1]["query"] = awkward
    recs[2]["query"] = "\\N"
    member.write(batch_of(recs, 0))
    assert sql_query("SELECT query FROM audit_data ORDER BY kafka_offset") == [
        (recs[0]["query"],),
        (awkward,),
        ("\\N",),
    ]


def test_multi_megabyte_queries_land_whole(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    """The predecessor's query column was too short; 5 MB queries (Percona returns such events
    whole) land unchanged, several per batch, split into statements below max_allowed_packet."""
    recs = records(SERVER, 6)
    big = ["select '" + chr(ord("a") + n) * (5 * 1024 * 1024) + "'" for n in range(4)]
    for n, query in enumerate(big):
        recs[n + 1]["query"] = query
    result = member.write(batch_of(recs, 0))
    assert (result.inserted, result.dead) == (6, [])
    stored = sql_query(
        "SELECT LENGTH(query), SHA2(query, 256) FROM audit_data ORDER BY kafka_offset"
    )
    assert [s[1] for s in stored[1:5]] == [hashlib.sha256(q.encode()).hexdigest() for q in big]


def test_tamper_evidence_links_are_kept(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 2)
    recs[0].update(chain="ab" * 32, chain_seq=7)
    member.write(batch_of(recs, 0))
    assert sql_query("SELECT chain, chain_seq FROM audit_data ORDER BY kafka_offset") == [
        ("ab" * 32, 7),
        (None, None),
    ]


def test_a_member_with_stale_offsets_is_fenced_and_writes_nothing(
    member: Member, archive: MySQLDsn, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 20)
    zombie = Member(archive)
    zombie.assign(0)  # read offset None, like member
    member.write(batch_of(recs[:10], 0))
    with pytest.raises(Fenced) as err:
        zombie.write(batch_of(recs[:15], 0))
    assert err.value.stored == {(TOPIC, 0): 10}
    zombie.sink.close()
    assert sql_query("SELECT COUNT(*) FROM audit_data") == [(10,)]
    assert sql_query("SELECT next_offset FROM audit_offsets WHERE kafka_partition = 0") == [(10,)]


def test_resend_across_a_rotation_never_lands_twice(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 120)
    member.write(batch_of(recs[:100], 0))
    # A rotation, as another process does it, between the first send and the re-send.
    sql_query("CREATE TABLE audit_data_new LIKE audit_data_template")
    sql_query("RENAME TABLE audit_data TO audit_data_20240301_120000, audit_data_new TO audit_data")
    # The producer crashed after sending 80..99 and re-sends them, then goes on to 119.
    result = member.write(batch_of(recs[80:120], 100))
    assert (result.inserted, result.duplicates) == (20, 20)
    assert sql_query("SELECT COUNT(*) FROM audit_data_20240301_120000") == [(100,)]
    assert sql_query("SELECT MIN(kafka_offset), COUNT(*) FROM audit_data") == [(120, 20)]
    assert sql_query("SELECT ts, id FROM audit_high_water") == [
        (recs[-1]["timestamp"].replace(tzinfo=None), recs[-1]["id"])
    ]


def test_clock_step_back_keeps_new_events_and_still_drops_resends(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    before = records(SERVER, 50)  # 12:00:00 .. 12:00:04
    member.write(batch_of(before, 0))
    sql_query("CREATE TABLE audit_data_new LIKE audit_data_template")
    sql_query("RENAME TABLE audit_data TO audit_data_20240301_120005, audit_data_new TO audit_data")
    # The clock steps back 3 s: new events at 12:00:02 with ids 10.. (distinct identities),
    # one event whose identity equals an archived one (treated as a re-send), then re-sends.
    stepped = [event_record(SERVER, START + timedelta(seconds=2), 10 + k, k) for k in range(5)]
    clash = before[25]
    result = member.write(batch_of([*stepped, clash, *before[45:]], 50))
    assert (result.inserted, result.duplicates) == (5, 6)
    assert sql_query("SELECT COUNT(*) FROM audit_data") == [(5,)]
    # The mark did not move back: it is still the greatest identity archived.
    assert sql_query("SELECT ts, id FROM audit_high_water") == [
        (before[-1]["timestamp"].replace(tzinfo=None), before[-1]["id"])
    ]
    # A re-send of the stepped-back events is found in audit_data (same table, PK) too.
    again = member.write(batch_of(stepped, 61))
    assert (again.inserted, again.duplicates) == (0, 5)


def test_bad_rows_are_isolated_and_dead_lettered_while_good_rows_land(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 40)
    recs[3]["account_user"] = "u" * 300  # longer than the column: strict mode rejects it
    recs[17]["connection_id"] = -5  # BIGINT UNSIGNED: out of range
    recs[21]["timestamp"] = datetime(1, 1, 1, tzinfo=UTC)  # a time MySQL cannot store
    recs[30]["timestamp"] = recs[30]["timestamp"] + timedelta(milliseconds=500)
    recs[33]["class"] = "c" * 65
    result = member.write(batch_of(recs, 0))
    dead = sorted((d.item.offset, d.error_class) for d in member.dead)
    assert dead == [
        (3, "ArchiveContentError"),
        (17, "ArchiveContentError"),
        (21, "InvalidRecord"),
        (30, "InvalidRecord"),
        (33, "ArchiveContentError"),
    ]
    assert result.inserted == 35
    offsets = [r[0] for r in sql_query("SELECT kafka_offset FROM audit_data ORDER BY kafka_offset")]
    assert offsets == [n for n in range(40) if n not in (3, 17, 21, 30, 33)]
    assert not sql_query("SELECT 1 FROM audit_data WHERE account_user LIKE 'uuuu%'")
    assert sql_query("SELECT next_offset FROM audit_offsets WHERE kafka_partition = 0") == [(40,)]


def test_dropped_table_is_a_clear_error_and_nothing_moves(
    member: Member, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 10)
    member.write(batch_of(recs[:5], 0))
    sql_query("DROP TABLE audit_data")
    with pytest.raises(ArchiveSchemaError, match="consumer setup"):
        member.write(batch_of(recs[5:], 5))
    assert member.dead == []
    assert sql_query("SELECT next_offset FROM audit_offsets WHERE kafka_partition = 0") == [(5,)]


_idents = st.builds(
    Identity,
    st.sampled_from([datetime(2026, 1, 1, 0, 0, s) for s in range(4)]),  # noqa: DTZ001 - naive UTC
    st.integers(0, 3),
)


@settings(max_examples=300)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from("abc"), _idents, st.integers(0, 2)), min_size=1, max_size=30
    ),
    marks=st.dictionaries(st.sampled_from("abcd"), _idents),
)
def test_the_summary_gives_the_marks_and_times_row_by_row_rules_give(
    rows: list[tuple[str, Identity, int]], marks: dict[str, Identity]
) -> None:
    """One pass replaced three loops in the writer: same results as those loops, ties too."""
    audit = [
        AuditRow(Item(TOPIC, partition, n, None, b"", None), ident, server, (server,), None)
        for n, (server, ident, partition) in enumerate(rows)
    ]
    summary = summarize(audit)
    assert _raised_marks(summary, marks) == _marks_row_by_row(audit, marks)
    assert summary.newest == _newest_row_by_row(audit)
    nothing_below = all(_above(s.low, marks.get(server)) for server, s in summary.spans.items())
    below = [a for a in audit if not _above(a.ident, marks.get(a.server))]
    assert nothing_below == (not below)


def _marks_row_by_row(audit: list[AuditRow], marks: dict[str, Identity]) -> dict[str, Any]:
    """The writer's former rule: a row above its server's mark so far raises it."""
    raised: dict[str, highwater.Mark] = {}
    for item, ident, server, _, _ in audit:
        top = raised[server].ident if server in raised else marks.get(server)
        if top is None or (ident.ts, ident.id) > (top.ts, top.id):
            raised[server] = highwater.Mark(ident, item.topic, item.partition, item.offset)
    return raised


def _newest_row_by_row(audit: list[AuditRow]) -> dict[tuple[str, int], datetime]:
    newest: dict[tuple[str, int], datetime] = {}
    for item, ident, _, _, _ in audit:
        if item.tp not in newest or ident.ts > newest[item.tp]:
            newest[item.tp] = ident.ts
    return newest


def test_a_batch_prepared_for_load_data_is_refused_retriably_by_an_insert_sink(
    archive: MySQLDsn, records: RecordFactory, sql_query: Query
) -> None:
    """The archive may turn local_infile off between decoding and writing: decode again."""
    member = Member(archive, "insert")
    member.assign(0)
    batch = batch_of(records(SERVER, 5), 0)
    lines_only = prepare(batch, CONTROL, CODEC, lines=True)
    assert all(a.row is None and a.line for a in lines_only.audit)
    try:
        with pytest.raises(ArchiveError, match="local_infile") as caught:
            member.sink.write(lines_only, dict(member.expected), member.dead.extend)
        assert caught.value.retriable
        assert sql_query("SELECT COUNT(*) FROM audit_data") == [(0,)]
        result = member.write(batch)  # decoded again, for INSERT
        assert result.inserted == 5
    finally:
        member.sink.close()
