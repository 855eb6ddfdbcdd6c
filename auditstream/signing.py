"""Ed25519 keys for sealed evidence: signing chain checkpoints and checking them.

The producer signs, now and then, the link of the last acknowledged event of a server's hash
chain (docs/tamper-evidence.md, "Signed checkpoints"); ``verify`` checks the signature with the
public key(s). The private key lives only with the producer.

Formats (chosen so that ``openssl`` and any Ed25519 library read them):

- private key: PKCS#8 PEM, unencrypted (``-----BEGIN PRIVATE KEY-----``), in a file of mode
  0600 or in the environment variable ``AUDITSTREAM_SEAL_KEY`` (never a flag);
- public key: SubjectPublicKeyInfo PEM, or the raw 32 bytes as 64 hex digits;
- key id: the first 8 bytes of SHA-256 of the raw 32-byte public key, as 16 hex digits;
- signature: the raw 64 bytes as 128 lowercase hex digits.

Traps:

- A private key is a secret: it is read into memory, never logged, never put in an error's
  context. A key file readable by group or others is refused (like ssh does).
- ``verify`` trusts a key because the operator gives it, not because a checkpoint names it:
  a checkpoint whose key id is not among the given keys is reported as ``unknown_key``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from auditstream.errors import ConfigError

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def key_id(public: Ed25519PublicKey) -> str:
    """First 8 bytes of SHA-256 of the raw public key, as 16 lowercase hex digits."""
    return hashlib.sha256(public.public_bytes(*_RAW)).digest()[:8].hex()


def public_hex(public: Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 lowercase hex digits."""
    return public.public_bytes(*_RAW).hex()


def public_pem(public: Ed25519PublicKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM text."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class Signer:
    """A private key and its id; ``sign`` returns the signature as hex."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, message: bytes) -> str:
        """The Ed25519 signature of ``message`` (128 hex digits)."""
        return self._private.sign(message).hex()

    def __repr__(self) -> str:  # never show the key
        return f"Signer(key_id={self.key_id})"


def generate() -> tuple[Signer, bytes]:
    """A new key pair: the signer and its private key as PKCS#8 PEM bytes."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Signer(private), pem


def write_private(path: Path, pem: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``pem``; an existing file is never overwritten.

    Raises:
        ConfigError: the file exists or cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create the key file: {exc.strerror}", path=str(path)) from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def _private_from(pem: bytes, where: str) -> Signer:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        # the library's message never contains the key material
        raise ConfigError(f"the seal key is not an unencrypted PEM private key: {exc}",
                          source=where) from None  # fmt: skip
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the seal key is not an Ed25519 key", source=where)
    return Signer(key)


def load_signer(key: SecretStr | None, key_file: Path | None) -> Signer | None:
    """The signing key from the environment's text (``key``) or a file; None when neither.

    Raises:
        ConfigError: both given, the file is readable by others or unreadable, or the text is
            not an Ed25519 private key (PKCS#8 PEM).
    """
    if key is not None and key_file is not None:
        raise ConfigError("give the seal key in the environment or as a file, not both")
    if key is not None:
        return _private_from(key.get_secret_value().encode("ascii", "replace"), "environment")
    if key_file is None:
        return None
    try:
        mode = key_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                "the seal key file is readable by others: chmod 600 it", path=str(key_file)
            )
        pem = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the seal key: {exc.strerror}", path=str(key_file)) from exc
    return _private_from(pem, str(key_file))


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from PEM text or 64 hex digits.

    Raises:
        ConfigError: neither, or not Ed25519.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError("not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError as exc:
        raise ConfigError(f"not an Ed25519 public key (PEM or 64 hex digits): {exc}") from None


@dataclass(frozen=True)
class Keyring:
    """The public keys ``verify`` trusts, by key id."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def load(cls, sources: Iterable[str | Path]) -> Keyring:
        """Keys from PEM/hex files, or from PEM/hex text given directly.

        Raises:
            ConfigError: a source is neither a readable file nor a key.
        """
        keys: dict[str, Ed25519PublicKey] = {}
        for source in sources:
            path = Path(source)
            try:
                text = path.read_text(encoding="ascii") if path.is_file() else str(source)
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read the public key: {exc}", path=str(path)) from exc
            key = parse_public(text)
            keys[key_id(key)] = key
        return cls(keys)

    def check(self, key_id_: str, message: bytes, signature: str) -> bool | None:
        """True: valid; False: invalid (or not hex); None: the key id is not trusted."""
        key = self.keys.get(key_id_)
        if key is None:
            return None
        try:
            key.verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True
