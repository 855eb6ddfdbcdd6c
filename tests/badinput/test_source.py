"""Bad input at the source, end to end: odd events are archived unchanged or accounted for by a
gap; a source the producer cannot read stops it with a clear message and exit code.

The emulator serves what its audit log holds, so odd events are written into the log as raw
lines; ``reconcile`` then checks that every event the source returns is in the archive with its
exact text, or named by a gap control event.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

import pytest

from producer.bookmark import BookmarkStore
from tests.faults.pipeline import Pipeline

TS = "2025-06-01 09:00:00"


def raw_lines(pipe: Pipeline, lines: list[tuple[str | bytes, int]]) -> None:
    """Append ``(text, id)`` lines at ``TS`` to the live log, exactly as given."""
    items = [(t.encode() if isinstance(t, str) else t, TS, ident) for t, ident in lines]
    pipe.emu.writer.write_raw_lines(items)
    pipe.written += len(items)


def test_odd_events_are_archived_unchanged_or_accounted_for(pipeline: Pipeline) -> None:
    big = "x" * 100_000  # larger than the producer's 64 KiB read buffer: skipped, warned
    raw_lines(
        pipeline,
        [
            ('{ "timestamp": "2025-06-01 09:00:00", "id": 0, "class": "general", "event": "a" }', 0),
            ('{"id":1,"event":"b","timestamp":"2025-06-01 09:00:00","class":"brand_new_class"}', 1),
            ('{ "timestamp": "2025-06-01 09:00:00", "id": 2, "class": "general", "event": "c", '
             '"new_key": { "nested": [1, 2.50, null, "\\u00e9\\ud83d\\ude00"] } }', 2),
            ('{ "class": "general", "event": "no identity at all" }', 3),
            ('{ "timestamp": "2025-06-01 09:00:00", "id": "4", "class": "general" }', 4),
            (f'{{ "timestamp": "2025-06-01 09:00:00", "id": 5, "class": "general", "q": "{big}" }}', 5),
            ('{ "timestamp": "2025-06-01 09:00:00", "id": 6, "class": "general", "event": "z" }', 6),
        ],
    )  # fmt: skip
    pipeline.producer_once()
    pipeline.consumer_once()
    report = pipeline.assert_clean()  # includes: no keyless element left unaccounted
    assert report.keys["table"] == 4  # ids 0, 1, 2, 6; id 5 is a gap, 3 and 4 have no key
    gaps = report.of("gap")
    assert {f.position for f in gaps if f.position != "-"} == {f"{TS}#5"}


def run_producer(
    pipe: Pipeline, user: str = "archiver", password: str | None = None, extra: Sequence[str] = ()
) -> str:
    env = pipe.env()
    if password is not None:
        env["AUDITSTREAM_SOURCE_PASSWORD"] = password
    argv = pipe.producer_argv("--once", *extra)
    argv[argv.index("--source-dsn") + 1] = f"mysql://{user}@127.0.0.1:{pipe.emu.port}"
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    return f"{done.returncode}\n{done.stderr.decode(errors='replace')}"


def test_invalid_utf8_in_the_log_stops_the_producer_with_exit_5(pipeline: Pipeline) -> None:
    pipeline.write(10)
    raw_lines(pipeline, [(b'{ "timestamp": "2025-06-01 09:00:00", "id": 0, "q": "\xff\xfe" }', 0)])
    out = run_producer(pipeline)
    assert out.startswith("5\n") and "not valid UTF-8" in out, out
    pipeline.consumer_once()
    # reconcile cannot read that page either (same parser): compare topic and archive
    report = pipeline.check(source=None)
    assert report.clean
    # the whole page is refused (the 10 events before the bad one share it): nothing published,
    # the bookmark not moved past them, so nothing is skipped once the log is repaired
    assert report.keys["topic"] == report.keys["table"] == 0
    assert BookmarkStore(pipeline.archive).load(pipeline.emu.server_uuid) is None


@pytest.mark.parametrize(
    ("setup", "flags", "message"),
    [
        ({"audit_log_format": "OLD"}, [], "JSON"),
        ({"users": ["archiver:pw:NONE"]}, [], "grant SELECT"),
        ({"users": ["archiver:pw:NONE"]}, ["--allow-self-audit"], "AUDIT_ADMIN"),
    ],
)
def test_a_source_not_set_up_for_reading_stops_with_a_clear_error(
    pipeline_factory: Callable[..., Pipeline],
    setup: dict[str, object],
    flags: list[str],
    message: str,
) -> None:
    pipe = pipeline_factory(**setup)
    out = run_producer(pipe, extra=flags)
    code = 4
    assert out.startswith(f"{code}\n") and message in out, out


def test_a_wrong_password_is_refused_without_showing_it(pipeline: Pipeline) -> None:
    out = run_producer(pipeline, password="Wr0ng-Pa55w0rd!")
    assert out.split("\n")[0] in ("3", "4") and "Wr0ng-Pa55w0rd!" not in out, out
    assert "Access denied" in out or "privilege" in out, out
