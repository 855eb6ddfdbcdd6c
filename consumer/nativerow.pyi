"""Type stub of the compiled fused row reader (consumer/nativerow.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

KINDS: dict[str, int]
SOURCES: dict[str, int]

class RowReader:
    def __init__(
        self,
        fields: Sequence[tuple[int, bool, bool]],
        sources: Sequence[int],
        ts_field: int,
        id_field: int,
        min_ms: int,
        max_ms: int,
        fallback: type[Exception],
        identity: Callable[..., Any],
        timestamp: Callable[[int], tuple[Any, str]],
        dumps: Callable[[Any], bytes],
    ) -> None: ...
    def __call__(
        self, value: bytes, start: int, partition: int, offset: int
    ) -> tuple[Any, tuple[Any, ...], bytes]: ...
    def line(
        self, value: bytes, start: int, partition: int, offset: int
    ) -> tuple[Any, str | None, bytes]: ...

def is_utf8(data: bytes) -> bool: ...
