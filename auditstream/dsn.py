"""MySQL connection strings: ``mysql://user[:password]@host[:port][/database][?ssl_ca=...]``.

The documented way to pass a password is an environment variable or a password file, never the
command line (``ps`` shows it to every user): a DSN without a password takes it from
``password`` / ``password_file`` on the settings that own the DSN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr

from auditstream.errors import ConfigError

_TLS_KEYS = {
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_verify_cert",
    "ssl_verify_identity",
    "ssl_disabled",
}


class MySQLDsn(BaseModel):
    """A parsed MySQL DSN. The password is a ``SecretStr``; ``str()`` masks it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    password: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 3306
    database: str | None = None
    options: dict[str, str] = {}

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``mysql://user[:password]@host[:port][/db][?opt=v]``.

        Raises:
            ConfigError: the text is not such a DSN (the message never repeats the password).
        """
        parts = urlsplit(text)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ConfigError(
                "a MySQL DSN looks like mysql://user[:password]@host[:port][/database]",
                dsn=mask(text),
            )
        try:
            port = parts.port or 3306
        except ValueError as exc:
            raise ConfigError("the DSN's port is not a number", dsn=mask(text)) from exc
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - _TLS_KEYS - {"charset", "connect_timeout"}
        if unknown:
            raise ConfigError(
                f"unknown DSN option(s) {sorted(unknown)}; allowed: {sorted(_TLS_KEYS)}",
                dsn=mask(text),
            )
        return cls(
            user=unquote(parts.username or "root"),
            password=SecretStr(unquote(parts.password)) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            database=parts.path.lstrip("/") or None,
            options=options,
        )

    def with_password(self, password: SecretStr | None, password_file: Path | None) -> Self:
        """Fill the password from settings when the DSN itself carries none."""
        if self.password is not None:
            return self
        if password is not None:
            return self.model_copy(update={"password": password})
        if password_file is not None:
            secret = password_file.read_text(encoding="utf-8").rstrip("\r\n")
            return self.model_copy(update={"password": SecretStr(secret)})
        return self

    def with_database(self, database: str | None) -> Self:
        """The same server with another default database."""
        return self.model_copy(update={"database": database})

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``mysql.connector.connect`` (the only place the secret is read)."""
        kwargs: dict[str, Any] = {"user": self.user, "host": self.host, "port": self.port}
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.database:
            kwargs["database"] = self.database
        for key, value in self.options.items():
            if key in ("ssl_verify_cert", "ssl_verify_identity", "ssl_disabled"):
                kwargs[key] = value.lower() in ("1", "true", "yes")
            elif key == "connect_timeout":
                kwargs[key] = int(value)
            else:
                kwargs[key] = value
        return kwargs

    def url(self, *, reveal: bool = False) -> str:
        """The DSN as text; the password is masked unless ``reveal``."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            secret = self.password.get_secret_value() if reveal else "***"
            auth += ":" + (quote(secret, safe="") if reveal else secret)
        query = "&".join(f"{k}={v}" for k, v in self.options.items())
        path = f"/{self.database}" if self.database else ""
        return f"mysql://{auth}@{self.host}:{self.port}{path}" + (f"?{query}" if query else "")

    def __str__(self) -> str:
        return self.url()


def mask(text: str) -> str:
    """Replace the password in a DSN-looking string by ``***`` (for messages and logs)."""
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


#: A settings field holding a MySQL DSN as text: checked when the settings are built, so an
#: invalid one is reported with its flag name (exit code 2), not later without it.
DsnText = Annotated[str, AfterValidator(ConfigError.checked(MySQLDsn.parse))]
