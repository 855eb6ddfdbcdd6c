"""Ed25519 keys: RFC 8032's known answer, key ids, key files and the environment."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from auditstream import signing
from auditstream.errors import ConfigError
from ops.keys import generate

# RFC 8032, section 7.1, TEST 1 (empty message)
RFC_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def rfc_signer() -> signing.Signer:
    return signing.Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC_SECRET)))


def test_rfc8032_known_answer_and_key_id() -> None:
    signer = rfc_signer()
    assert signing.public_hex(signer.public) == RFC_PUBLIC
    assert signer.sign(b"") == RFC_SIGNATURE
    assert signer.key_id == hashlib.sha256(bytes.fromhex(RFC_PUBLIC)).digest()[:8].hex()
    assert "9d61" not in repr(signer)


def test_keyring_accepts_hex_and_pem_and_tells_bad_from_unknown(tmp_path: Path) -> None:
    signer = rfc_signer()
    pem = tmp_path / "k.pub"
    pem.write_text(signing.public_pem(signer.public))
    for source in (RFC_PUBLIC, str(pem)):
        ring = signing.Keyring.load([source])
        assert ring.check(signer.key_id, b"m", signer.sign(b"m")) is True
        assert ring.check(signer.key_id, b"n", signer.sign(b"m")) is False
        assert ring.check(signer.key_id, b"m", "zz") is False
        assert ring.check("0" * 16, b"m", signer.sign(b"m")) is None
    with pytest.raises(ConfigError, match="Ed25519 public key"):
        signing.Keyring.load(["not a key"])


def test_keys_command_writes_a_private_file_of_mode_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seal.key"
    assert generate(out) == 0
    printed = capsys.readouterr().out
    assert os.stat(out).st_mode & 0o777 == 0o600
    signer = signing.load_signer(None, out)
    assert signer is not None
    assert f"key id:      {signer.key_id}" in printed
    assert signing.public_hex(signer.public) in printed
    assert "PRIVATE" not in printed
    ring = signing.Keyring.load([out.with_name("seal.key.pub")])
    assert ring.check(signer.key_id, b"x", signer.sign(b"x")) is True
    with pytest.raises(ConfigError, match="exists"):
        generate(out)  # never overwrites a key


def test_auditstream_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ops.cli import main

    out = tmp_path / "cli.key"
    assert main(["keys", f"--out={out}"]) == 0
    printed = capsys.readouterr().out
    signer = signing.load_signer(None, out)
    assert signer is not None and f"key id:      {signer.key_id}" in printed
    assert len(signer.key_id) == 16 and signing.public_hex(signer.public) in printed
    assert main(["keys", f"--out={out}"]) == 2  # never over an existing key
    assert main(["keys"]) == 2  # --out is required


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "seal.key"
    generate(out)
    out.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        signing.load_signer(None, out)


def test_key_from_the_environment_text_and_bad_keys(tmp_path: Path) -> None:
    out = tmp_path / "seal.key"
    generate(out)
    text = out.read_text()
    signer = signing.load_signer(SecretStr(text), None)
    assert signer is not None and signer.key_id == signing.load_signer(None, out).key_id  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="not both"):
        signing.load_signer(SecretStr(text), out)
    with pytest.raises(ConfigError, match="PEM private key") as err:
        signing.load_signer(SecretStr("garbage-secret"), None)
    assert "garbage-secret" not in str(err.value)
    assert signing.load_signer(None, None) is None
