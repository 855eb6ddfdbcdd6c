"""A value from a driver or a header as ``str``: the one text helper.

mysql-connector returns some columns (``SHOW CREATE TABLE``, ``information_schema``, a ``raw``
cursor's values) as ``bytes`` or ``bytearray`` depending on the server and the cursor; Kafka
header values are ``bytes``. Trap: the default is strict UTF-8, for values that must round-trip
(table names, dump keys); pass ``errors="replace"`` only where the text is shown, not used.
"""

from __future__ import annotations


def as_text(value: object, errors: str = "strict") -> str:
    """``value`` decoded from UTF-8 if it is bytes, else ``str(value)`` (None gives ``"None"``)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors)
    return str(value)
