import subprocess
import sys
import time

from bench import machine


def test_describe_names_the_machine_and_versions():
    info = machine.describe()
    assert info["cpu"].split()[0].isdigit()
    assert info["memory"].endswith("GB")
    assert "confluent-kafka" in info["packages"]
    assert info["librdkafka"][0].isdigit()


def test_other_load_reports_cpu_used_by_other_processes():
    load = machine.OtherLoad()
    time.sleep(0.2)
    text = load.describe()
    assert "core-seconds used by other processes" in text
    assert "load average" in text


def test_git_head_names_the_checkout_measured_from_any_directory(tmp_path, monkeypatch):
    """Git runs in bench's own checkout: from another directory it named none (or another's)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=machine.CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert head
    monkeypatch.chdir(tmp_path)
    assert machine.git_head().startswith(head)


def test_our_cpu_counts_a_child_that_is_still_running():
    """A component that outlives the window (the stack of ``--repeat``) is ours, not others'.

    Before, only reaped children counted: each run's "other load" held the shared broker
    and database.
    """
    burn = "import time\nwhile time.process_time() < 0.5:\n    pass\nprint('burnt', flush=True)\n"
    burn += "time.sleep(60)\n"
    before = machine._our_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "burnt"
        assert machine._our_cpu_seconds() - before >= 0.45
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
