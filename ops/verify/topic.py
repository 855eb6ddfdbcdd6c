"""Links from Kafka: the event topic, the control topic (gaps) and the dead-letter topic.

Each topic is read from its first offset to its end (partition EOF) with an assigned, group-less
consumer that commits nothing, so verifying never disturbs a consumer group. Traps:

- The end of a partition is the EOF event, not ``get_watermark_offsets`` (Tansu miscounts it).
- A partition holds several servers; ``verify`` keeps one chain per server, so the event topic is
  streamed in offset order and only the gaps and dead letters (few) are held in memory, then
  slotted in by ``seq`` (``core.interleave``).
- Re-sent events after a producer crash appear twice in the topic: ``verify`` recognises them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition

from auditstream.chain import Link
from auditstream.errors import BrokerError, DecodeError
from auditstream.kafkalog import LOGGER
from auditstream.text import as_text
from consumer.dlq import DLQ_PAYLOAD, REFERENCE
from ops.verify.core import interleave
from schemas.codec import Codec, decode

log = logging.getLogger(__name__)
_DLQ_SOURCE = ("dlq.source.topic", "dlq.source.partition", "dlq.source.offset")


def messages(
    conf: Mapping[str, Any], topic: str, idle_timeout: float = 30.0, *, missing_ok: bool = False
) -> Iterator[Message]:
    """Every message of ``topic``, partition by partition interleaved, up to the current end.

    Args:
        conf: librdkafka settings (``bootstrap.servers`` and security keys); group and offset
            settings are set here.
        topic: the topic to read.
        idle_timeout: give up when nothing arrives for this long before every partition ended.
        missing_ok: a topic that does not exist is empty (the DLQ before the first letter).

    Raises:
        BrokerError: the topic does not exist, the broker fails, or the end is never reached.
    """
    consumer = Consumer(
        {
            "logger": LOGGER,
            **conf,
            "group.id": f"auditstream-verify-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        try:
            meta = consumer.list_topics(topic, timeout=idle_timeout).topics.get(topic)
        except KafkaException as exc:
            raise BrokerError(f"cannot read the topic's metadata: {exc}", topic=topic) from exc
        if meta is None or meta.error is not None or not meta.partitions:
            if missing_ok:
                return
            raise BrokerError("no such topic", topic=topic)
        pending = set(meta.partitions)
        consumer.assign([KafkaPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
        last = time.monotonic()
        while pending:
            msg = consumer.poll(0.5)
            if msg is None:
                if time.monotonic() - last > idle_timeout:
                    raise BrokerError(
                        "the end of the topic was not reached", topic=topic, partitions=pending
                    )
                continue
            last = time.monotonic()
            err = msg.error()
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
                continue
            if err is not None:
                raise BrokerError(f"consumer error: {err.str()}", topic=topic)
            yield msg
    finally:
        consumer.close()


def links(
    msgs: Iterable[Message], codec: Codec | None = None, *, dead_lettered: bool = False
) -> Iterator[Link]:
    """The links among ``msgs`` (events and gaps; heartbeats and undecodable values skipped).

    ``where`` is ``topic/partition@offset``; for dead letters the original location follows.
    """
    for msg in msgs:
        topic = str(msg.topic())
        where = f"{topic}/{msg.partition()}@{msg.offset()}"
        if dead_lettered:
            headers: dict[str, Any] = dict(msg.headers() or [])
            if headers.get(DLQ_PAYLOAD) == REFERENCE:
                continue  # no payload: the original, in the events topic, is the link
            src = [as_text(headers.get(h), "replace") for h in _DLQ_SOURCE]
            where += f" (dead letter of {src[0]}/{src[1]}@{src[2]})"
        try:
            name, record = decode(msg.value(), topic, codec)
        except DecodeError as exc:
            # not a link anyone can check; a break next to it may be this message
            log.warning(
                "undecodable message skipped: %s", exc.message, extra={"ctx": {"where": where}}
            )
            continue
        link = Link.from_record(name, record, where)
        if link is not None:
            yield replace(link, dead_lettered=True) if dead_lettered else link


def read(
    conf: Mapping[str, Any],
    topic: str,
    control_topic: str | None = None,
    dlq_topic: str | None = None,
    codec: Codec | None = None,
    idle_timeout: float = 30.0,
) -> Iterator[Link]:
    """All links of the event topic, with the control topic's gaps and the DLQ's letters."""
    extras: list[Link] = []
    if control_topic:
        extras += links(messages(conf, control_topic, idle_timeout, missing_ok=True), codec)
    if dlq_topic:
        msgs = messages(conf, dlq_topic, idle_timeout, missing_ok=True)
        extras += links(msgs, codec, dead_lettered=True)
    return interleave(links(messages(conf, topic, idle_timeout), codec), extras)
