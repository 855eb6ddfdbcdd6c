from auditstream.position import Position, position_text


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
