"""``python -m bench.codec [--events N] [--repeats N]``: per-event cost of the codec, before/after.

Micro benchmark of the producer's and consumer's per-event work on one core, on held-out events
of the emulator's traffic generator plus every event of ``../shared/samples``:

1. parse (``orjson.loads``) and ``to_record``, for scale;
2. encode before: ``to_record`` + ``SingleObjectCodec.encode_with_fastavro`` (the codec as it
   was); after: ``SingleObjectCodec.encode_event`` (the fused encoder of ``schemas.fused``);
   both give the full message value;
3. decode before: ``SingleObjectCodec.decode_with_fastavro`` (the codec as it was); after:
   ``SingleObjectCodec.decode`` (the generated decoder).

Each step is timed as CPU time of this process (``time.process_time``), the best of
``repeats`` passes over all events: the machine is shared, and CPU time is what other
processes disturb least. Before anything is timed the outputs are checked equal (same bytes,
same records), so a figure is never that of a wrong answer. ``python -m bench`` runs the same
measurement as its ``codec`` stage on the run's corpus.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fastavro
import orjson

from bench import corpus, report
from bench.measure import Figure
from bench.run import Run
from schemas import codec, registry
from schemas.mapping import to_record

log = logging.getLogger(__name__)

STAGE = "codec (µs per event, one core)"
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
SERVER_UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
CHAIN = "5d" * 32
METRICS = (
    "parse: orjson.loads",
    "map: to_record",
    "encode before: to_record + fastavro",
    "encode after: encode_event (fused)",
    "decode before: fastavro",
    "decode after: generated",
)


def sample_events() -> list[bytes]:
    """Every event line of ``../shared/samples/*.log`` (trailing comma cut).

    Trap: the folder sits beside the checkout (as in CI); a checkout elsewhere (a git worktree)
    has none, and the stage then times the generated events alone: said in a warning.
    """
    out = []
    if not SAMPLES.is_dir():
        log.warning("no sample events: %s is not a directory (generated events only)", SAMPLES)
    for path in sorted(SAMPLES.glob("*.log")):
        for line in path.read_bytes().splitlines():
            body = line.rstrip().removesuffix(b",")
            if body.startswith(b"{"):
                out.append(body)
    return out


def _best(fn: Callable[[Any], object], items: Sequence[Any], repeats: int) -> float:
    """Best CPU µs per item of ``fn`` over ``repeats`` passes."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - t0)
    return best / len(items) * 1e6


def measure(raws: Sequence[bytes], repeats: int = 5) -> list[Figure]:
    """The six figures (``METRICS``) for ``raws``, after checking both paths agree.

    Raises:
        RuntimeError: the fast path's bytes or records differ from fastavro's.
    """
    single = codec.SingleObjectCodec()
    texts = [raw.decode() for raw in raws]
    parsed = [(text, orjson.loads(raw)) for text, raw in zip(texts, raws, strict=True)]
    records = [
        to_record(SERVER_UUID, t, e, chain=CHAIN, chain_seq=i) for i, (t, e) in enumerate(parsed)
    ]

    def before_encode(i: int) -> bytes:
        text, event = parsed[i]
        record = to_record(SERVER_UUID, text, event, chain=CHAIN, chain_seq=i)
        return single.encode_with_fastavro(registry.AUDIT_EVENT, record, "t")

    def after_encode(i: int) -> bytes:
        text, event = parsed[i]
        return single.encode_event(SERVER_UUID, text, event, "t", chain=CHAIN, chain_seq=i)

    def before_decode(value: bytes) -> Any:
        return single.decode_with_fastavro(value, "t")[1]

    def after_decode(value: bytes) -> Any:
        return single.decode(value, "t")[1]

    indices = list(range(len(raws)))
    values = [before_encode(i) for i in indices]
    if [after_encode(i) for i in indices] != values:
        raise RuntimeError("encode_event wrote other bytes than to_record + fastavro")
    if [after_decode(v) for v in values] != [before_decode(v) for v in values]:
        raise RuntimeError("the generated decoder read other records than fastavro")
    schema = registry.current(registry.AUDIT_EVENT)
    if [fastavro.schemaless_reader(io.BytesIO(v[10:]), schema, schema) for v in values] != records:
        raise RuntimeError("fastavro did not read back the records written")

    timings = {
        METRICS[0]: _best(orjson.loads, raws, repeats),
        METRICS[1]: _best(lambda p: to_record(SERVER_UUID, p[0], p[1]), parsed, repeats),
        METRICS[2]: _best(before_encode, indices, repeats),
        METRICS[3]: _best(after_encode, indices, repeats),
        METRICS[4]: _best(before_decode, values, repeats),
        METRICS[5]: _best(after_decode, values, repeats),
    }
    size = sum(map(len, raws)) / len(raws)
    notes = {
        METRICS[0]: f"{len(raws):,} events, {size:.0f} B/event, best of {repeats} (CPU time)",
        METRICS[3]: f"{timings[METRICS[2]] / timings[METRICS[3]]:.1f}× faster, same bytes",  # noqa: RUF001
        METRICS[5]: f"{timings[METRICS[4]] / timings[METRICS[5]]:.1f}× faster, same records",  # noqa: RUF001
    }
    return [Figure(STAGE, m, timings[m], "µs", note=notes.get(m, "")) for m in METRICS]


def codec_stage(run: Run) -> None:
    """The ``codec`` stage of ``python -m bench``: ``measure`` on up to 20,000 corpus events."""
    written, _ = run.need_source()
    raws = written.raw_events()[:20_000] + sample_events()
    for figure in measure(raws, repeats=3 if len(raws) > 5_000 else 5):
        run.add(figure)


def main(argv: list[str] | None = None) -> int:
    """Write a held-out corpus, measure, print the load and the figures table."""
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="generated events")
    parser.add_argument("--seed", type=int, default=1207, help="generator seed (held out)")
    parser.add_argument("--repeats", type=int, default=5, help="passes; the best is kept")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-codec-") as tmp:
        raws = corpus.write(Path(tmp), args.events, seed=args.seed).raw_events()
    raws += sample_events()
    load = os.getloadavg()
    figures = measure(raws, args.repeats)
    after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} before, "
        f"{after[0]:.2f} {after[1]:.2f} {after[2]:.2f} after"
    )
    print(report.table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
