"""The order of the stages in a run, and the rows each one fills in the table."""

from __future__ import annotations

from bench import codec, join, latency, pipeline, rotation, stages
from bench.run import Stage

STAGES: tuple[Stage, ...] = (
    Stage(
        "corpus",
        stages.write_corpus,
        (("corpus (traffic generator)", "events/s written"),),
        always=True,
    ),
    Stage("codec", codec.codec_stage, tuple((codec.STAGE, m) for m in codec.METRICS)),
    Stage(
        "limits",
        stages.source_limits,
        (
            ("limit: audit_log_read pages", "events/s"),
            ("limit: audit_log_read pages", "MB/s"),
            ("limit: audit_log_read pages", "page latency p50 / max"),
            ("limit: pages read + raw produce", "events/s"),
            ("limit: pages read + raw produce", "MB/s"),
        ),
    ),
    Stage(
        "sinks",
        stages.sink_limits,
        (
            ("limit: raw produce", "events/s"),
            ("limit: raw produce", "MB/s"),
            ("limit: LOAD DATA", "rows/s"),
            ("limit: LOAD DATA", "MB/s"),
            ("limit: LOAD DATA", "rows/s, 5,000-row transactions"),
        ),
    ),
    Stage(
        "baseline",
        stages.predecessor,
        (
            ("baseline (predecessor)", "rows/s source → audit_data"),
            ("baseline (predecessor)", "MB/s"),
        ),
    ),
    Stage(
        "join",
        join.join_stage,
        tuple(
            (join.STAGE, f"{broker}, {clients}")
            for broker in ("Tansu", "Apache Kafka")
            for clients in ("default timeouts", "FAST_GROUP")
        ),
    ),
    Stage(
        "producer",
        pipeline.producer_stage,
        tuple(
            ("producer (emulator → broker)", m)
            for m in (
                "events/s",
                "MB/s (source bytes)",
                "page cycle (mean)",
                "peak RSS",
                "CPU per event",
            )
        ),
    ),
    Stage(
        "consumer",
        pipeline.consumer_stage,
        (
            ("consumer x1 (broker → audit_data)", "rows/s"),
            ("consumer x1 (broker → audit_data)", "CPU per row"),
            ("consumer x2 (broker → audit_data)", "rows/s"),
            ("consumer x3 (broker → audit_data)", "rows/s"),
        ),
    ),
    Stage(
        "e2e",
        latency.e2e_stage,
        (("end to end (log → audit_data)", "highest steady rate"),),
    ),
    Stage(
        "rotation",
        rotation.rotation_stage,
        (
            ("rotation (RENAME under inserts)", "longest insert pause"),
            ("dump + upload (OCI test server)", "rows/s"),
            ("dump + upload (OCI test server)", "MB/s (uncompressed TSV)"),
        ),
    ),
)
