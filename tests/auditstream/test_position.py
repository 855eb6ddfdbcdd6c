import pytest

from auditstream.errors import ConfigError
from auditstream.position import MAX_ID, Position, parse_position, position_text


def test_a_position_orders_like_the_log_and_equals_its_tuple() -> None:
    a, b = Position("2026-01-01 00:00:00", 7), Position("2026-01-01 00:00:01", 0)
    assert a < b and a == ("2026-01-01 00:00:00", 7)
    assert sorted([b, a]) == [a, b]


def test_bookmark_notation_and_the_audit_log_read_argument() -> None:
    pos = Position("2026-01-01 00:00:00", 7)
    assert pos.text() == "2026-01-01 00:00:00#7"
    assert position_text(pos) == pos.text() == position_text(("2026-01-01 00:00:00", 7))
    assert position_text(None) is None
    assert pos.arg() == {"timestamp": "2026-01-01 00:00:00", "id": 7}


@pytest.mark.parametrize(
    ("text", "upper", "expected"),
    [
        ("2025-06-01", False, ("2025-06-01 00:00:00", 0)),
        ("2025-06-01", True, ("2025-06-01 23:59:59", MAX_ID)),
        ("2025-06-01 10:11:12", False, ("2025-06-01 10:11:12", 0)),
        ("2025-06-01 10:11:12", True, ("2025-06-01 10:11:12", MAX_ID)),
        ("2025-06-01 10:11:12#7", False, ("2025-06-01 10:11:12", 7)),
        ("2025-06-01T10:11:12", True, ("2025-06-01 10:11:12", MAX_ID)),
        (" 2025-06-01 10:11:12#18446744073709551615 ", False, ("2025-06-01 10:11:12", MAX_ID)),
    ],
)
def test_bookmark_flags_parse_and_widen(text: str, upper: bool, expected: tuple[str, int]) -> None:
    assert parse_position(text, upper=upper) == expected


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2025-13-01", "2025-06-01 25:00:00", "2025-06-01#x", "2025-02-30",
     "2025-06-01 10:11:12#18446744073709551616", ""],
)  # fmt: skip
def test_bad_bookmark_flags_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"bookmark|valid time|larger"):
        parse_position(text)
