from bench.profile import summarize


def test_summary_counts_self_and_inclusive_samples(tmp_path):
    stacks = tmp_path / "consumer.txt"
    stacks.write_text(
        "<module> (/x/consumer/__main__.py:3);run (/x/consumer/loop.py:10);decode (/x/schemas/codec.py:40) 60\n"
        "<module> (/x/consumer/__main__.py:3);run (/x/consumer/loop.py:10);write (/x/consumer/sink.py:7) 40\n"
    )
    text = summarize(stacks)
    assert text.startswith("100 samples")
    self_part, incl_part = text.split("inclusive")
    assert "60.0 %  decode (codec.py)" in self_part
    assert "40.0 %  write (sink.py)" in self_part
    assert "100.0 %  run (loop.py)" in incl_part


def test_empty_profile_says_so(tmp_path):
    empty = tmp_path / "p.txt"
    empty.write_text("")
    assert "no samples" in summarize(empty)
