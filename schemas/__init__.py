"""The public message contract: Avro schemas (every published version) and the codec.

- ``audit_event.avsc`` / ``control_event.avsc``: the current schemas.
- ``versions/<name>.v<N>.avsc``: every published version, never edited; the current schema is
  always the newest one and keeps FULL compatibility with all earlier ones.
- :mod:`schemas.mapping`: an audit event (as returned by ``audit_log_read``) → a flat record.
- :mod:`schemas.codec`: records ↔ bytes, single-object encoding or Schema Registry framing.
"""
