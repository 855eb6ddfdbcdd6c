import pytest

from auditstream.text import as_text


def test_bytes_and_bytearray_are_decoded_and_other_values_printed() -> None:
    assert as_text(b"audit_data_20260101_000000") == "audit_data_20260101_000000"
    assert as_text(bytearray("é".encode())) == "é"
    assert as_text(7) == "7" and as_text("x") == "x" and as_text(None) == "None"


def test_strict_by_default_replace_on_request() -> None:
    with pytest.raises(UnicodeDecodeError):
        as_text(b"\xff")
    assert as_text(b"a\xff", "replace") == "a\ufffd"
