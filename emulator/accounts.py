"""Accounts of the emulated server and the ``caching_sha2_password`` plugin mysql-mimic lacks.

MySQL 8's default plugin is ``caching_sha2_password``; libmysqlclient 9.x (the C extension of
mysql-connector-python) no longer ships ``mysql_native_password``, so the emulator offers
``caching_sha2_password`` only (clients that start with another plugin get an auth switch).

Trap: the emulator knows each password, so every login takes the *fast* path (scramble check,
then ``0x03`` fast-auth-success). A real server without a cached entry asks for full
authentication over TLS or RSA, which clients handle transparently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from mysql_mimic.auth import (
    AuthInfo,
    AuthPlugin,
    AuthState,
    Forbidden,
    IdentityProvider,
    Success,
    User,
)
from mysql_mimic.utils import nonce

from auditstream.errors import ConfigError

#: Privileges the emulator knows about; only AUDIT_ADMIN and SUPER change its behaviour.
KNOWN_PRIVILEGES = {"AUDIT_ADMIN", "SUPER", "SYSTEM_VARIABLES_ADMIN", "ALL"}
FAST_AUTH_SUCCESS = b"\x03"


@dataclass(frozen=True)
class Account:
    """One ``user@%`` account: its password and global privileges."""

    name: str
    password: str
    privileges: frozenset[str] = field(default_factory=frozenset)
    host: str = "%"

    @property
    def is_audit_admin(self) -> bool:
        """Whether the audit functions are allowed (AUDIT_ADMIN, SUPER or ALL)."""
        return bool(self.privileges & {"AUDIT_ADMIN", "SUPER", "ALL"})

    @classmethod
    def parse(cls, text: str) -> Account:
        """Parse ``NAME:PASSWORD[:PRIV,...]`` (the CLI's ``--user``); no privilege list = ALL.

        Raises:
            ConfigError: no ``:`` or an unknown privilege.
        """
        name, sep, rest = text.partition(":")
        if not sep or not name:
            raise ConfigError("--user takes NAME:PASSWORD[:PRIV,...]", user=name or None)
        password, _, privs = rest.partition(":")
        chosen = {p.strip().upper() for p in privs.split(",") if p.strip()} if privs else {"ALL"}
        if privs.strip().upper() == "NONE":
            chosen = set()
        unknown = chosen - KNOWN_PRIVILEGES
        if unknown:
            raise ConfigError(f"unknown privilege(s) {sorted(unknown)}", user=name)
        return cls(name=name, password=password, privileges=frozenset(chosen))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class CachingSha2PasswordPlugin(AuthPlugin):  # type: ignore[misc]  # mimic is untyped
    """Server side of ``caching_sha2_password`` (fast authentication only).

    The client sends ``XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + nonce))``; an empty password
    sends nothing. ``User.auth_string`` holds the cleartext password here.
    """

    name = "caching_sha2_password"
    client_plugin_name = "caching_sha2_password"

    async def auth(self, auth_info: AuthInfo | None = None) -> AuthState:  # noqa: D102
        if auth_info and auth_info.handshake_plugin_name == self.name:
            scramble_nonce = (auth_info.handshake_auth_data or b"").rstrip(b"\x00")
        else:
            scramble_nonce = nonce(20)
            auth_info = yield scramble_nonce + b"\x00"
        if self.matches(auth_info.user.auth_string or "", auth_info.data, scramble_nonce):
            yield Success(auth_info.user.name)
        else:
            yield Forbidden()

    @staticmethod
    def matches(password: str, response: bytes, scramble_nonce: bytes) -> bool:
        """Check a client's scramble against the known password."""
        if not password:
            return response in (b"", b"\x00")
        if len(response) != 32:
            return False
        stage1 = _sha256(password.encode())
        expected = _xor(stage1, _sha256(_sha256(stage1) + scramble_nonce))
        return expected == response


class Accounts(IdentityProvider):  # type: ignore[misc]  # mimic is untyped
    """The emulator's account table, as a mysql-mimic identity provider."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self.by_name = {a.name: a for a in accounts}

    def get_plugins(self) -> list[AuthPlugin]:  # noqa: D102
        return [CachingSha2PasswordPlugin()]

    async def get_user(self, username: str) -> User | None:  # noqa: D102
        account = self.by_name.get(username)
        if account is None:
            return None
        return User(
            name=account.name,
            auth_string=account.password,
            auth_plugin=CachingSha2PasswordPlugin.name,
        )
