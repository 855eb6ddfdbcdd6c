"""bench.codec measures both paths after proving they agree; no speed is asserted here."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bench import codec as bench_codec
from schemas import codec

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_prints_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.codec", "--events", "300", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "load average" in proc.stdout
    for metric in bench_codec.METRICS:
        assert f"| {bench_codec.STAGE} | {metric} | " in proc.stdout
    assert "same bytes" in proc.stdout and "same records" in proc.stdout


def test_the_samples_are_measured_too() -> None:
    samples = bench_codec.sample_events()
    assert len(samples) == 31
    figures = bench_codec.measure(samples, repeats=1)
    assert [f.metric for f in figures] == list(bench_codec.METRICS)
    assert all(f.value is not None and f.value > 0 for f in figures)


def test_a_fast_path_that_disagrees_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    real = codec.SingleObjectCodec.encode_event

    def off_by_one(self: codec.SingleObjectCodec, *args: object, **kwargs: object) -> bytes:
        return real(self, *args, **kwargs) + b"\x00"  # type: ignore[arg-type]

    monkeypatch.setattr(codec.SingleObjectCodec, "encode_event", off_by_one)
    with pytest.raises(RuntimeError, match="other bytes"):
        bench_codec.measure(bench_codec.sample_events(), repeats=1)


def test_missing_samples_are_said_not_skipped_quietly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert bench_codec.sample_events()  # the real ../shared/samples beside the checkout
    monkeypatch.setattr(bench_codec, "SAMPLES", tmp_path / "absent")
    with caplog.at_level(logging.WARNING, logger="bench.codec"):
        assert bench_codec.sample_events() == []
    assert "no sample events" in caplog.text and "absent" in caplog.text
