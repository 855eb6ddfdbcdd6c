"""``auditstream keys``: generate the Ed25519 key pair that seals the chains.

Writes the private key (PKCS#8 PEM) to a new file of mode 0600 — never over an existing one —
and the public key beside it (``<file>.pub``, PEM); prints the public key (hex and PEM) and its
key id. Give the private key to the producer only (``--seal-key-file`` or
``AUDITSTREAM_SEAL_KEY``); give the public key to whoever runs ``verify``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from auditstream import signing
from auditstream.errors import ConfigError
from auditstream.settings import ServiceSettings, load


class KeysSettings(ServiceSettings):
    """Where to write the new key pair."""

    out: Path = Field(description="the private key file to create (mode 0600); .pub beside it")


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream keys``."""
    settings = load(KeysSettings, argv, prog="auditstream keys", section="keys")
    return generate(settings.out)


def generate(out: Path) -> int:
    """Write a new key pair to ``out`` and ``out.pub``; print the public key and its id."""
    pub = out.with_name(out.name + ".pub")
    if pub.exists():
        raise ConfigError("the public key file exists already", path=str(pub))
    signer, pem = signing.generate()
    signing.write_private(out, pem)
    pub.write_text(signing.public_pem(signer.public), encoding="ascii")
    print(f"key id:      {signer.key_id}")
    print(f"public key:  {signing.public_hex(signer.public)}")
    print(f"private key: {out} (mode 0600; give it to the producer only)")
    print(f"public PEM:  {pub}")
    sys.stdout.write(signing.public_pem(signer.public))
    return 0
