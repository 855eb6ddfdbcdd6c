"""The Tansu runner's work directory: its own temp dir goes with it, a caller's is kept."""

from __future__ import annotations

from pathlib import Path

from auditstream.embedded import TansuBroker


def test_stopping_for_good_deletes_the_temp_dir_the_broker_made() -> None:
    with TansuBroker().start() as broker:
        workdir = broker.workdir
        assert (workdir / "broker.log").exists()
        broker.stop()  # restart() is stop() then start(): the log stays for it
        assert (workdir / "broker.log").exists()
    assert not workdir.exists()


def test_a_workdir_the_caller_gave_is_kept(tmp_path: Path) -> None:
    broker = TansuBroker(workdir=tmp_path).start()
    broker.cleanup()
    assert broker.proc is None
    assert (tmp_path / "broker.log").exists()
