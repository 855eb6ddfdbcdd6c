from bench import corpus
from emulator.logfile import event_key


def test_corpus_is_the_generators_events_byte_for_byte(tmp_path):
    written = corpus.write(tmp_path / "log", 500, seed=7)
    raw = written.raw_events()
    assert written.count == len(raw) == 500
    assert event_key(raw[0]) == written.first
    assert event_key(raw[-1]) == written.last
    # Same seed, same corpus: every benchmark of a run moves the same bytes.
    again = corpus.write(tmp_path / "log2", 500, seed=7)
    assert again.raw_events() == raw


def test_empty_log_has_no_events(tmp_path):
    corpus.write_empty(tmp_path / "empty")
    assert corpus.read_raw(tmp_path / "empty") == []
