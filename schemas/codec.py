"""Records ↔ Kafka message values, in one of two framings.

- **Single-object encoding** (no Schema Registry): ``C3 01`` + the writer schema's 8-byte
  CRC-64-AVRO fingerprint (little-endian) + the Avro body. Any Avro library decodes it with the
  files in ``schemas/versions/``.
- **Confluent framing** (``schema_registry_url`` given): ``00`` + 4-byte schema id + body,
  through confluent-kafka's ``AvroSerializer`` / ``AvroDeserializer`` (subject ``<topic>-value``).

``decode`` recognises both framings by their first byte, so a consumer reads topics written
either way. Decoding resolves the writer's version against the current (reader) schema.

Single-object values go through code generated from the schema (``schemas.compiled``,
``schemas.fused``), proven byte-identical to fastavro; fastavro stays the reference and does
everything the generated code does not cover: values of unexpected types, a body the fast
decoder refuses, and every older writer version (resolution is left to fastavro). A failure on
the fast path is never an answer, only a reason to ask fastavro.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Protocol

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from auditstream.errors import DecodeError
from schemas import compiled, fused, registry
from schemas.mapping import to_record

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = 0


class Codec(Protocol):
    """What the producer and consumer need from a framing."""

    def encode(self, name: str, record: dict[str, Any], topic: str) -> bytes:
        """Encode ``record`` of schema ``name`` (audit_event/control_event) for ``topic``."""
        ...

    def decode(self, value: bytes, topic: str) -> tuple[str, dict[str, Any]]:
        """Decode a message value into ``(schema name, record)``; raise ``DecodeError``."""
        ...

    def encode_event(
        self,
        server_uuid: str,
        raw: str | bytes,
        event: Mapping[str, Any],
        topic: str,
        *,
        chain: str | None = None,
        chain_seq: int | None = None,
    ) -> bytes:
        """``encode(AUDIT_EVENT, to_record(server_uuid, raw, event, chain=, chain_seq=), topic)``.

        ``raw`` may be the event text's UTF-8 bytes (the producer's, straight from the page).
        Raises what that raises (``InvalidEventError``, ``ValueError``, ``OverflowError``).
        """
        ...


class SingleObjectCodec:
    """Avro single-object encoding with the schema files as the only registry."""

    def __init__(self) -> None:
        self._headers = {
            name: SINGLE_OBJECT_MARKER + registry.fingerprint64(registry.current(name))
            for name in (registry.AUDIT_EVENT, registry.CONTROL_EVENT)
        }
        self._fast = {name: _generated(name) for name in self._headers}
        self._fused = _fused_encoder()
        # Only the current version of each schema is read by generated code: older writers
        # need resolution, which stays fastavro's.
        self._decoders = {
            header[2:]: (name, fast[1])
            for name, header in self._headers.items()
            if (fast := self._fast[name]) is not None
        }

    def encode(self, name: str, record: dict[str, Any], topic: str) -> bytes:
        """Encode with the current schema ``name``."""
        header = self._headers[name]
        fast = self._fast[name]
        if fast is not None:
            try:
                return fast[0](record, header)
            except compiled.Fallback:  # any failure there: the reference decides
                pass
        return self.encode_with_fastavro(name, record, topic)

    def encode_with_fastavro(self, name: str, record: dict[str, Any], topic: str) -> bytes:
        """``encode`` by the reference alone (fastavro)."""
        header = self._headers[name]
        buf = io.BytesIO()
        buf.write(header)
        fastavro.schemaless_writer(buf, registry.current(name), record)
        return buf.getvalue()

    def encode_event(
        self,
        server_uuid: str,
        raw: str | bytes,
        event: Mapping[str, Any],
        topic: str,
        *,
        chain: str | None = None,
        chain_seq: int | None = None,
    ) -> bytes:
        """An audit event straight to its message value (``schemas.fused``).

        The same bytes as ``encode("audit_event", to_record(...), topic)``; that path runs
        whenever the fused one fails, so it gives every error.
        """
        if self._fused is not None:
            try:
                return self._fused(
                    server_uuid, raw, event, chain, chain_seq, self._headers[registry.AUDIT_EVENT]
                )
            except compiled.Fallback:  # any failure there: the reference decides
                pass
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        record = to_record(server_uuid, text, event, chain=chain, chain_seq=chain_seq)
        return self.encode(registry.AUDIT_EVENT, record, topic)

    def decode(self, value: bytes, topic: str) -> tuple[str, dict[str, Any]]:
        """Decode a single-object encoded value (other framings: see ``decode``)."""
        fast = self._decoders.get(value[2:10])
        if fast is not None and value[:2] == SINGLE_OBJECT_MARKER:
            try:
                return fast[0], fast[1](value, 10)
            except compiled.Fallback:  # any failure there: the reference decides
                pass
        return self.decode_with_fastavro(value, topic)

    def decode_with_fastavro(self, value: bytes, topic: str) -> tuple[str, dict[str, Any]]:
        """``decode`` by the reference alone (fastavro, resolving older writer versions)."""
        if value[:2] != SINGLE_OBJECT_MARKER or len(value) < 10:
            raise DecodeError("not Avro single-object encoding", topic=topic)
        known = registry.by_fingerprint().get(value[2:10])
        if known is None:
            raise DecodeError(
                "written with an unknown schema (fingerprint not in schemas/versions)",
                topic=topic,
                fingerprint=value[2:10].hex(),
            )
        name, writer = known
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(value[10:]), writer, registry.current(name)
            )
        except Exception as exc:
            raise DecodeError(f"corrupt Avro body: {exc!r}", topic=topic) from exc
        if not isinstance(record, dict):
            raise DecodeError("decoded value is not a record", topic=topic)
        return name, record


class RegistryCodec:
    """Confluent framing through a Schema Registry (``mock://`` works in-process for tests)."""

    def __init__(self, url: str, conf: dict[str, Any] | None = None) -> None:
        # new_client gives the in-process mock registry for mock:// URLs (tests).
        self._client = SchemaRegistryClient.new_client({"url": url, **(conf or {})})
        self._serializers = {
            name: AvroSerializer(
                self._client, registry.schema_text(name), conf={"auto.register.schemas": True}
            )
            for name in (registry.AUDIT_EVENT, registry.CONTROL_EVENT)
        }
        self._deserializers = {
            name: AvroDeserializer(self._client, registry.schema_text(name))
            for name in (registry.AUDIT_EVENT, registry.CONTROL_EVENT)
        }
        self._single = SingleObjectCodec()

    def encode(self, name: str, record: dict[str, Any], topic: str) -> bytes:
        """Encode through the registry (registers the schema under ``<topic>-value``)."""
        value = self._serializers[name](record, SerializationContext(topic, MessageField.VALUE))
        assert isinstance(value, bytes)  # noqa: S101 - the serializer returns bytes for a dict
        return value

    def encode_event(
        self,
        server_uuid: str,
        raw: str | bytes,
        event: Mapping[str, Any],
        topic: str,
        *,
        chain: str | None = None,
        chain_seq: int | None = None,
    ) -> bytes:
        """``to_record`` then ``encode`` (the registry's serializer: no fused path here)."""
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        record = to_record(server_uuid, text, event, chain=chain, chain_seq=chain_seq)
        return self.encode(registry.AUDIT_EVENT, record, topic)

    def decode(self, value: bytes, topic: str) -> tuple[str, dict[str, Any]]:
        """Decode either framing; Confluent-framed values are resolved through the registry."""
        if value[:2] == SINGLE_OBJECT_MARKER:
            return self._single.decode(value, topic)
        if not value or value[0] != CONFLUENT_MAGIC or len(value) < 5:
            raise DecodeError("neither Confluent framing nor single-object encoding", topic=topic)
        try:
            schema = self._client.get_schema(int.from_bytes(value[1:5], "big"))
        except Exception as exc:
            raise DecodeError(f"schema id not in the registry: {exc}", topic=topic) from exc
        name = _name_of(schema.schema_str)
        try:
            record = self._deserializers[name](
                value, SerializationContext(topic, MessageField.VALUE)
            )
        except Exception as exc:
            raise DecodeError(f"corrupt Avro body: {exc!r}", topic=topic) from exc
        return name, record


def decode(
    value: bytes | None, topic: str, codec: Codec | None = None
) -> tuple[str, dict[str, Any]]:
    """Decode a message value of either framing; without a registry only single-object works.

    Raises:
        DecodeError: empty, unknown framing, unknown schema or a corrupt body (a poison record).
    """
    if not value:
        raise DecodeError("empty message value", topic=topic)
    return (codec or _DEFAULT).decode(value, topic)


def for_settings(schema_registry_url: str | None) -> Codec:
    """The codec a service uses: the registry's when a URL is configured, else single-object."""
    return RegistryCodec(schema_registry_url) if schema_registry_url else SingleObjectCodec()


def _generated(name: str) -> tuple[compiled.EncodeFn, compiled.DecodeFn] | None:
    """The generated codec of the current schema ``name``; None leaves it all to fastavro."""
    try:
        return compiled.compile_record(registry.current(name))
    except compiled.Unsupported:
        return None


def _fused_encoder() -> fused.EventEncoder | None:
    try:
        return fused.compile_event_encoder(registry.current(registry.AUDIT_EVENT))
    except compiled.Unsupported:
        return None


def _name_of(schema_str: str | None) -> str:
    if schema_str and '"ControlEvent"' in schema_str:
        return registry.CONTROL_EVENT
    return registry.AUDIT_EVENT


_DEFAULT = SingleObjectCodec()
