"""Malformed ``audit_log_read`` pages through the producer's page parser (``producer.page``).

A page that cannot be read as an array stops the batch with a ``PageError`` (nothing of it is
published, the bookmark stays); an element that is JSON but cannot be identified comes back
with ``error`` set and becomes an ``invalid_event`` gap. The emulator serves only what its log
files hold, so crafted pages are fed to the parser directly.
"""

from __future__ import annotations

import pytest

from auditstream.errors import PageError
from auditstream.position import Position
from producer.page import decode_text, split

GOOD = '{ "timestamp": "2025-06-01 10:00:00", "id": 0, "class": "general", "event": "status" }'
GOOD2 = '{ "timestamp": "2025-06-01 10:00:00", "id": 1, "class": "general", "event": "status" }'


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("", "not a JSON array"),
        ("garbage", "not a JSON array"),
        ('{"timestamp": "2025-06-01 10:00:00", "id": 0}', "not a JSON array"),
        (f"[{GOOD},\n{GOOD2[:40]}", "not JSON or is truncated"),
        (f"[{GOOD},\n", "truncated"),
        (f"[{GOOD}", "truncated"),
        (f"[{GOOD},\nnull,\n{GOOD2}]", "null is not the last"),
        (f"[{GOOD}]\n[{GOOD2}]", "garbage after"),
        (f"[{GOOD} {GOOD2}]", "garbage between events"),
        (f"[{GOOD2},\n{GOOD}]", "repeat or go back"),
        (f"[{GOOD},\n{GOOD}]", "repeat or go back"),
        ('[{ "timestamp": "2025-06-01 10:00:00", "id": NaN }]', "not JSON"),
        ('[{ "timestamp": "2025-06-01 10:00:00", "id": 1, "x": Infinity }]', "not JSON"),
    ],
)
def test_unreadable_pages_are_page_errors(page: str, message: str) -> None:
    with pytest.raises(PageError, match=message):
        split(page, server_uuid="u")


def test_a_page_going_back_before_the_previous_page_is_refused() -> None:
    with pytest.raises(PageError, match="repeat or go back"):
        split(f"[{GOOD}]", Position("2025-06-01 10:00:00", 0))


def test_invalid_utf8_is_a_page_error_naming_the_byte() -> None:
    data = f'[{GOOD[:-2]}, "q": "'.encode() + b"\xff\xfe" + b'" }]'
    with pytest.raises(PageError, match="not valid UTF-8 at byte"):
        decode_text(data, server_uuid="u")


@pytest.mark.parametrize(
    ("element", "error"),
    [
        ('{ "id": 0, "class": "general" }', "timestamp missing"),
        ('{ "timestamp": "2025-06-01 10:00:00", "class": "general" }', "id missing"),
        ('{ "timestamp": "2025-06-01 10:00:00", "id": "7" }', "id missing or not an unsigned"),
        ('{ "timestamp": "2025-06-01 10:00:00", "id": -1 }', "id missing or not an unsigned"),
        ('{ "timestamp": "2025-06-01 10:00:00", "id": 1.5 }', "id missing or not an unsigned"),
        ('{ "timestamp": "2025-06-01 10:00:00", "id": 18446744073709551616 }', "unsigned"),
        ('{ "timestamp": 1717236000, "id": 0 }', "timestamp missing or not"),
        ('{ "timestamp": "2025-06-01T10:00:00Z", "id": 0 }', "timestamp missing or not"),
        ('{ "timestamp": "2025-06-01 10:00:00", "id": true }', "id missing or not an unsigned"),
        ("[1, 2]", "not an object"),
        ('"text"', "not an object"),
        ("42", "not an object"),
    ],
)
def test_unidentifiable_elements_come_back_with_their_error_and_exact_text(
    element: str, error: str
) -> None:
    page = split(f"[{GOOD},\n{element},\n{GOOD2},\nnull]")
    assert [e.pos is None for e in page.events] == [False, True, False]
    bad = page.events[1]
    assert bad.error is not None and error in bad.error
    assert bad.raw == element  # its size and SHA-256 go into the gap event
    assert page.exhausted


@pytest.mark.parametrize(
    "element",
    [
        '{ "id": 1, "timestamp": "2025-06-01 10:00:00", "class": "general", "event": "x" }',
        '{"timestamp":"2025-06-01 10:00:00","id":1,"class":"new_class","event":"new_event"}',
        '{ "timestamp": "2025-06-01 10:00:00", "id": 1, "future": { "k": [1, 2.50, null] } }',
        '{ "timestamp": "2025-06-01 10:00:00", "id": 1, "q": "\\u00e9\\ud83d\\ude00 \\" \\\\" }',
    ],
)
def test_unknown_classes_keys_and_key_orders_keep_the_exact_text(element: str) -> None:
    page = split(f"[{GOOD},\n{element}]")
    assert page.events[1].pos == Position("2025-06-01 10:00:00", 1)
    assert page.events[1].raw == element
    assert not page.exhausted  # no trailing null: more pages follow, nothing is wrong
