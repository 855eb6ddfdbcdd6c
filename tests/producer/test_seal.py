"""Signed checkpoints and explained skips, on the real broker and bookmark store.

What a subscriber sees on the control topic: checkpoints that verify with the public key, sign
links that are on the event topic, number 1, 2, ... per server and are links of the chain; a
``bookmark set`` becomes a skip link that continues the old chain.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from auditstream import checkpoint
from auditstream.chain import ChainState, Link
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from auditstream.kafka import producer_config
from auditstream.mysql import connect
from auditstream.settings import load
from auditstream.signing import Keyring, Signer, load_signer, public_hex
from auditstream.text import as_text
from ops.cli import main as cli
from ops.keys import generate
from producer.bookmark import BookmarkStore
from producer.config import Options, ProducerSettings
from producer.linker import Linker
from producer.loop import Loop
from producer.publisher import Publisher
from producer.seal import Seal, SealStore
from schemas.codec import SingleObjectCodec
from tests.producer.conftest import UUID, FakeSource, assert_chain_intact, make_events
from tests.producer.test_loop import topics  # noqa: F401 - fixture

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]


@pytest.fixture
def key(tmp_path: Path) -> tuple[Signer, Keyring]:
    path = tmp_path / "seal.key"
    generate(path)
    signer = load_signer(None, path)
    assert signer is not None
    return signer, Keyring.load([path.with_name("seal.key.pub")])


def sealed_loop(
    source: FakeSource,
    store: BookmarkStore,
    dsn: MySQLDsn,
    bootstrap: str,
    names: tuple[str, str],
    signer: Signer | None,
    **opts: Any,
) -> tuple[Loop, Seal]:
    codec = SingleObjectCodec()
    seal = Seal(
        WitnessSealStore(dsn), codec, names[1], 20.0, signer, opts.pop("every", None),
        opts.pop("every_seconds", None), clock=opts.pop("clock", time.monotonic),
    )  # fmt: skip
    options = Options(
        topic=names[0], control_topic=names[1], start_from="earliest", once=True, idle_min=0.01,
        idle_max=0.05, backoff_max=0.2, heartbeat_interval=3600, ack_timeout=20, **opts,
    )  # fmt: skip
    kafka = producer_config(bootstrap, {"linger.ms": 5})
    return Loop(source, lambda u: Publisher(kafka, u), store, codec, options, seal), seal


class WitnessSealStore(SealStore):
    """Notes, as each checkpoint's state is stored (seal step 5), what the bookmark store held
    just before: the link the producer had bookmarked, i.e. seen acknowledged."""

    def __init__(self, dsn: MySQLDsn) -> None:
        super().__init__(dsn)
        self.bookmarked: dict[int, tuple[str, int]] = {}

    def sealed(self, server_uuid: str, chain: ChainState, checkpoint_seq: int) -> None:
        rows = self._query(
            "SELECT chain, chain_seq FROM audit_config WHERE server_uuid = %s", (server_uuid,)
        )
        assert rows
        self.bookmarked[checkpoint_seq] = (as_text(rows[0][0]), int(str(rows[0][1])))
        super().sealed(server_uuid, chain, checkpoint_seq)


def witness(seal: Seal) -> WitnessSealStore:
    store = seal._store
    assert isinstance(store, WitnessSealStore)
    return store


def controls(read: Reader, topic: str, count: int, kind: str) -> list[dict[str, Any]]:
    return [r for _, r, _ in read(topic, count) if r["kind"] == kind]


def assert_signed_acknowledged(
    cps: list[dict[str, Any]], events: list[Any], ring: Keyring, seal: Any
) -> None:
    """Each checkpoint verifies with ``ring`` and signs an event's link on the topic: the one
    bookmarked when it was signed (the bookmark moves only after the broker acknowledged it)."""
    by_seq = {r["chain_seq"]: r["chain"] for _, r, _ in events}
    for c in cps:
        link = Link.from_record("control_event", c)
        assert link is not None and checkpoint.check(ring, link) is True
        assert by_seq[c["signed_seq"]] == c["signed_chain"]
        assert witness(seal).bookmarked[c["checkpoint_seq"]] == (c["signed_chain"], c["signed_seq"])


def test_checkpoints_sign_acknowledged_links_and_are_links_themselves(
    store: BookmarkStore,
    mysql_db: MySQLDsn,
    bootstrap: str,
    topics: tuple[str, str],  # noqa: F811
    read_topic: Reader,
    key: tuple[Signer, Keyring],
    capsys: pytest.CaptureFixture[str],
) -> None:
    signer, ring = key
    source = FakeSource(make_events(100))
    loop, seal = sealed_loop(
        source, store, mysql_db, bootstrap, topics, signer, every=20, batch_events=7,
        pages_in_flight=3,
    )  # fmt: skip
    loop.run()
    events = read_topic(topics[0], 100)
    cps = controls(read_topic, topics[1], seal.checkpoints, "checkpoint")
    assert len(cps) == seal.checkpoints >= 5
    assert [c["checkpoint_seq"] for c in cps] == list(range(1, len(cps) + 1))
    # pages_in_flight=3 keeps later batches unacknowledged while a checkpoint is signed
    assert_signed_acknowledged(cps, events, ring, seal)
    assert {c["key_id"] for c in cps} == {signer.key_id}
    # the last one (the end of a --once run) seals the last event
    assert cps[-1]["signed_chain"] == events[-1][1]["chain"]
    length = assert_chain_intact(UUID, events, [(UUID, c, None) for c in cps])
    assert length == 100 + len(cps)
    assert SealStore(mysql_db).checkpoint_seq(UUID) == len(cps)
    last_at = cps[-1]["at"].timestamp()
    gauge = "auditstream_producer_checkpoint_timestamp_seconds"
    assert REGISTRY.get_sample_value(gauge, {"server": UUID}) == last_at

    # a restart continues the numbers and the chain through the last checkpoint
    for raw in make_events(30, start="2025-01-01 00:00:"):
        source.append(raw)
    again, seal2 = sealed_loop(source, store, mysql_db, bootstrap, topics, signer, every=20)
    again.run()
    more = controls(read_topic, topics[1], len(cps) + seal2.checkpoints, "checkpoint")
    assert [c["checkpoint_seq"] for c in more] == list(range(1, len(more) + 1))
    all_events = read_topic(topics[0], 130)
    assert assert_chain_intact(UUID, all_events, [(UUID, c, None) for c in more]) == 130 + len(more)
    # and verify, reading the topics with the public key, agrees
    pub = public_hex(signer.public)
    argv = ["verify", f"--bootstrap-servers={bootstrap}", f"--topic={topics[0]}",
            f"--control-topic={topics[1]}", f"--seal-public-key={pub}", "--idle-timeout=5"]  # fmt: skip
    capsys.readouterr()
    assert cli(argv) == 0
    assert f"last checkpoint {len(more)} signs link" in capsys.readouterr().out


def test_the_timer_seals_in_the_middle_of_a_run_too(
    store: BookmarkStore,
    mysql_db: MySQLDsn,
    bootstrap: str,
    topics: tuple[str, str],  # noqa: F811
    read_topic: Reader,
    key: tuple[Signer, Keyring],
) -> None:
    signer, ring = key
    ticks = itertools.count(0, 10)  # every look at the clock is 10 s later
    loop, seal = sealed_loop(
        FakeSource(make_events(100)), store, mysql_db, bootstrap, topics, signer,
        every_seconds=30, clock=lambda: float(next(ticks)), batch_events=7, pages_in_flight=2,
    )  # fmt: skip
    loop.run()
    cps = controls(read_topic, topics[1], seal.checkpoints, "checkpoint")
    assert len(cps) == seal.checkpoints >= 3  # not only the final one of the --once run
    events = read_topic(topics[0], 100)
    assert cps[0]["signed_seq"] < events[-1][1]["chain_seq"]  # before the end
    assert_signed_acknowledged(cps, events, ring, seal)
    assert assert_chain_intact(UUID, events, [(UUID, c, None) for c in cps]) == 100 + len(cps)


def test_bookmark_set_becomes_a_skip_link_that_continues_the_chain(
    store: BookmarkStore,
    mysql_db: MySQLDsn,
    bootstrap: str,
    topics: tuple[str, str],  # noqa: F811
    read_topic: Reader,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = FakeSource(make_events(30))
    sealed_loop(source, store, mysql_db, bootstrap, topics, None)[0].run()
    skipped_to = source.positions[-1]
    for raw in make_events(10, start="2025-01-01 00:00:"):
        source.append(raw)
    target = f"{source.positions[-5].ts}#{source.positions[-5].id}"
    argv = ["bookmark", "set", f"--bookmark-dsn={mysql_db}", f"--server-uuid={UUID}"]
    assert cli([*argv, f"--to={target}", "--reason=skip a flood"]) == 0
    sealed_loop(source, store, mysql_db, bootstrap, topics, None)[0].run()
    events = read_topic(topics[0], 34)
    skips = controls(read_topic, topics[1], 1, "skip")
    assert len(skips) == 1
    skip = skips[0]
    assert (skip["from_timestamp"], skip["from_id"]) == (skipped_to.ts, skipped_to.id)
    assert f"{skip['to_timestamp']}#{skip['to_id']}" == target
    assert skip["detail"] == "skip a flood" and "root" in skip["actor"]
    assert skip["chain_seq"] == 31  # right after the old chain's last link
    assert assert_chain_intact(UUID, events, [(UUID, s, None) for s in skips]) == 35
    # verify: one chain through the skip, reported as an explained skip (a key is needed
    # for the seal report, not for the skip's link)
    argv = ["verify", f"--bootstrap-servers={bootstrap}", f"--topic={topics[0]}",
            f"--control-topic={topics[1]}", "--idle-timeout=5",
            f"--seal-public-key={'00' * 31 + '01'}"]  # fmt: skip
    capsys.readouterr()
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "35 links (seq 1..35" in out and "note skip:" in out and "skip a flood" in out
    # published once: a further start publishes nothing again
    sealed_loop(source, store, mysql_db, bootstrap, topics, None)[0].run()
    assert len(controls(read_topic, topics[1], 1, "skip")) == 1


def test_sealing_needs_a_schedule_and_a_key_never_as_a_flag(tmp_path: Path) -> None:
    base = ["--source-dsn=mysql://u@h:3306"]
    with pytest.raises(ConfigError, match="schedule"):
        load(ProducerSettings, [*base, "--seal-every-events=10"], prog="p")
    with pytest.raises(ConfigError, match="command line"):
        load(ProducerSettings, [*base, "--seal-key=secret"], prog="p")
    path = tmp_path / "k"
    generate(path)
    s = load(
        ProducerSettings, [*base, "--seal-every-seconds=5", f"--seal-key-file={path}"], prog="p"
    )
    signer = s.signer()
    assert signer is not None and "secret" not in repr(s.masked())


def test_the_seal_key_from_the_environment_reaches_the_signer_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k"
    generate(path)
    pem = path.read_text()
    monkeypatch.setenv("AUDITSTREAM_SEAL_KEY", pem)
    base = ["--source-dsn=mysql://u@h:3306", "--seal-every-events=10"]
    s = load(ProducerSettings, base, prog="p")
    signer = s.signer()
    file_signer = load_signer(None, path)
    assert signer is not None and file_signer is not None
    assert signer.key_id == file_signer.key_id
    body = pem.splitlines()[1]  # a line of the key's base64
    assert body not in repr(s.masked()) and body not in repr(s) and body not in repr(signer)
    # the environment and a file at once: which one would sign is ambiguous, so neither does
    with pytest.raises(ConfigError, match="not both"):
        load(ProducerSettings, [*base, f"--seal-key-file={path}"], prog="p").signer()


class Crash(BaseException):
    """Stands for kill -9 (never retried)."""


class CrashingSealStore(SealStore):
    """Dies after the checkpoint's ack, before its state is stored (seal step 5)."""

    def sealed(self, server_uuid: str, chain: ChainState, checkpoint_seq: int) -> None:
        raise Crash


def test_a_crash_before_the_checkpoint_is_stored_leaves_a_note_not_a_break(
    store: BookmarkStore,
    mysql_db: MySQLDsn,
    bootstrap: str,
    topics: tuple[str, str],  # noqa: F811
    key: tuple[Signer, Keyring],
    capsys: pytest.CaptureFixture[str],
) -> None:
    signer, _ = key
    source = FakeSource(make_events(40))
    loop, _ = sealed_loop(source, store, mysql_db, bootstrap, topics, signer, every=20)
    loop._seal._store = CrashingSealStore(mysql_db)  # type: ignore[union-attr]
    with pytest.raises(Crash):
        loop.run()
    # restarted: the chain continues from the stored event, the checkpoint is left outside it
    for raw in make_events(30, start="2025-01-01 00:00:"):
        source.append(raw)
    again, seal = sealed_loop(source, store, mysql_db, bootstrap, topics, signer, every=20)
    again.run()
    assert seal.checkpoints >= 1
    pub = public_hex(signer.public)
    argv = ["verify", f"--bootstrap-servers={bootstrap}", f"--topic={topics[0]}",
            f"--control-topic={topics[1]}", f"--seal-public-key={pub}", "--idle-timeout=5"]  # fmt: skip
    capsys.readouterr()
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "note checkpoint_unlinked" in out and "TAMPER" not in out


def test_the_timer_and_the_count_decide_when_a_checkpoint_is_due() -> None:
    now = [0.0]
    seal = Seal(SealStore(MySQLDsn.parse("mysql://u@h")), SingleObjectCodec(), "c", 1.0,
                Signer(Ed25519PrivateKey.generate()), every_events=100, every_seconds=30,
                clock=lambda: now[0])  # fmt: skip
    linker = Linker(ChainState("u", "00" * 32, 0))
    batcher: Any = SimpleNamespace(chain=linker)
    assert not seal.due(batcher) and not seal.due(batcher, final=True)  # nothing new
    linker.relink(ChainState("u", "00" * 32, 5))
    assert not seal.due(batcher) and seal.due(batcher, final=True)
    now[0] = 30.0
    assert seal.due(batcher)  # 30 s with something new
    now[0] = 1.0
    linker.relink(ChainState("u", "00" * 32, 100))
    assert seal.due(batcher)  # 100 links
    off = Seal(SealStore(MySQLDsn.parse("mysql://u@h")), SingleObjectCodec(), "c", 1.0)
    assert not off.due(batcher, final=True)  # no key: never


def test_a_table_from_before_sealing_starts_without_skips_and_refuses_to_seal(
    mysql_db: MySQLDsn, key: tuple[Signer, Keyring]
) -> None:
    store = BookmarkStore(mysql_db)
    store.setup()
    store.close()
    conn = connect(mysql_db)
    cur = conn.cursor()
    cur.execute("ALTER TABLE audit_config DROP COLUMN checkpoint_seq, DROP COLUMN pending_skip")
    conn.commit()
    conn.close()
    chain = ChainState.start(UUID)
    codec = SingleObjectCodec()
    plain = Seal(SealStore(mysql_db), codec, "c", 1.0)
    assert plain.start(UUID, None, chain) == chain  # type: ignore[arg-type]
    sealing = Seal(SealStore(mysql_db), codec, "c", 1.0, key[0], 10)
    with pytest.raises(ConfigError, match="producer setup"):
        sealing.start(UUID, None, chain)  # type: ignore[arg-type]
