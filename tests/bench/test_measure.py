import sys
import time

import pytest

from bench.measure import Child, Figure, percentile, run


def test_child_peak_rss_is_the_childs_own(tmp_path):
    # The child holds 80 MB at its peak; the benchmark process itself stays small.
    code = "b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    result = run([sys.executable, "-c", code], tmp_path / "child.log", timeout=60)
    assert result.returncode == 0
    assert 80 <= result.peak_rss_mb < 200


def test_failing_child_reports_its_output(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        run([sys.executable, "-c", "raise SystemExit('boom')"], tmp_path / "c.log", timeout=60)


def test_stop_ends_a_running_child(tmp_path):
    child = Child([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "c.log").start()
    assert child.alive()
    result = child.stop(timeout=10)
    assert result.returncode == -15
    assert not child.alive()


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0


def test_ratios():
    f = Figure("consumer", "rows/s", 60_000, "rows/s", baseline=6_000, limit=80_000)
    assert f.vs_baseline == 10
    assert f.vs_limit == 0.75
    assert Figure("x", "y", None, "").vs_limit is None


def test_child_of_a_large_parent_reports_its_own_peak(tmp_path):
    # The benchmark holds its corpus in memory; a child must not inherit that as its peak
    # (wait4's ru_maxrss does: it keeps the pre-exec copy's high-water mark).
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    result = run([sys.executable, "-c", "import time; time.sleep(0.3)"], tmp_path / "c.log", 60)
    assert result.peak_rss_mb < 100
    del ballast


def test_child_cpu_time_is_its_own_and_survives_alive_checks(tmp_path):
    # The child burns ~0.3 s of CPU; alive() looks at it until it exits without reaping it,
    # so wait() still reads its exact CPU time from wait4.
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    child = Child([sys.executable, "-c", code], tmp_path / "burn.log").start()
    while child.alive():
        pass
    assert not child.alive()
    result = child.wait(60)
    assert result.returncode == 0
    assert 0.3 <= result.cpu_seconds < result.seconds + 0.1


def test_a_stopped_child_reports_its_cpu_time_too(tmp_path):
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass\ntime.sleep(60)"
    child = Child([sys.executable, "-c", code], tmp_path / "sleep.log").start()
    time.sleep(1.0)
    result = child.stop(timeout=5)
    assert result.returncode != 0  # SIGTERM
    assert 0.2 <= result.cpu_seconds < 1.0
