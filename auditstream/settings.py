"""Settings: pydantic models built from flags > environment (``AUDITSTREAM_*``) > TOML file.

Settings objects are built only in entry points (``load``); everything else receives them.
pydantic-settings reads the environment whenever a ``BaseSettings`` is instantiated, so tests
construct the plain models directly and never call ``load``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from auditstream.dsn import mask as mask_dsn
from auditstream.errors import ConfigError

ENV_PREFIX = "AUDITSTREAM_"
CONFIG_ENV = "AUDITSTREAM_CONFIG"


class ServiceSettings(BaseSettings):
    """Base of every command's settings: frozen, unknown keys rejected, kebab-case flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        env_nested_delimiter="__",
        validate_default=True,
    )

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets masked (for ``--print-config`` and logs)."""
        masked: dict[str, Any] = _mask(self.model_dump(mode="python"))
        return masked


S = TypeVar("S", bound=ServiceSettings)


def load(cls: type[S], argv: Sequence[str], *, prog: str, section: str | None = None) -> S:
    """Build ``cls`` from flags, then the environment, then the TOML file (``--config``).

    ``--print-config`` prints the effective settings (secrets masked) as JSON and exits 0.

    The TOML file is found from ``--config PATH`` or ``AUDITSTREAM_CONFIG``; keys may be at the
    top level or under ``[section]`` (e.g. ``[producer]``), which wins over the top level.

    Raises:
        ConfigError: a setting is invalid; the message names it, its value and what is allowed.
    """
    args = list(argv)
    _refuse_secret_flags(cls, args)
    print_config = "--print-config" in args
    args = [arg for arg in args if arg != "--print-config"]
    config_path = _pop_config(args) or os.environ.get(CONFIG_ENV)
    file_values: dict[str, Any] = {}
    if config_path:
        file_values = _read_toml(Path(config_path), section, cls)

    class _Loaded(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            cli: CliSettingsSource[Any] = CliSettingsSource(
                settings_cls,
                cli_parse_args=args,
                cli_prog_name=prog,
                cli_kebab_case=True,
                cli_implicit_flags=True,
                cli_exit_on_error=True,
            )
            return (init_settings, cli, env_settings, _DictSource(settings_cls, file_values))

    _Loaded.__name__ = cls.__name__
    _Loaded.__qualname__ = cls.__qualname__
    try:
        settings = _Loaded()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    if print_config:
        # The effective settings, secrets masked; then stop: nothing is started.
        print(json.dumps(settings.masked(), indent=2, default=str))
        raise SystemExit(0)
    return settings


def describe(exc: ValidationError) -> str:
    """One line per invalid setting: its flag name, the value given (masked) and the rule."""
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a rule across settings (model validator): its message says which
            lines.append(f"invalid settings: {err['msg'].removeprefix('Value error, ')}")
            continue
        name = ".".join(str(p) for p in err["loc"])
        flag = "--" + name.replace("_", "-")
        value = err.get("input")
        shown = "***" if "password" in name or "secret" in name else repr(value)
        if isinstance(value, dict):
            shown = "(section)"
        lines.append(f"invalid setting {flag} (AUDITSTREAM_{name.upper()}) = {shown}: {err['msg']}")
    return "; ".join(lines)


class _DictSource(PydanticBaseSettingsSource):
    """Values already read from the TOML file (lowest precedence)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _refuse_secret_flags(cls: type[BaseSettings], args: list[str]) -> None:
    """Secrets never come from the command line: ``ps`` shows it to every user on the host."""
    for name, info in cls.model_fields.items():
        if "SecretStr" not in repr(info.annotation):
            continue
        flag = "--" + name.replace("_", "-")
        if any(arg == flag or arg.startswith(flag + "=") for arg in args):
            raise ConfigError(
                f"{flag} is not accepted on the command line (other users can read it); "
                f"set {ENV_PREFIX}{name.upper()} or use {flag}-file"
            )
    _refuse_secret_kafka_config(args)


#: librdkafka keys whose values are secrets: never accepted through ``--kafka-config``.
SECRET_KAFKA_KEYS = ("sasl.password", "ssl.key.password", "ssl.keystore.password")


def _refuse_secret_kafka_config(args: list[str]) -> None:
    """``--kafka-config sasl.password=...`` would show the password in ``ps``, like a flag."""
    for i, arg in enumerate(args):
        if not arg.startswith("--kafka-config"):
            continue
        value = arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
        key = next((k for k in SECRET_KAFKA_KEYS if k in value), None)
        if key is not None:
            raise ConfigError(
                f"--kafka-config {key}=... is not accepted on the command line (other users can "
                f"read it); set {ENV_PREFIX}KAFKA_PASSWORD or use --kafka-password-file"
            )


def _pop_config(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if arg.startswith("--config="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def _read_toml(path: Path, section: str | None, cls: type[BaseSettings]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=str(path)) from exc
    fields = set(cls.model_fields)
    values = {k.replace("-", "_"): v for k, v in data.items() if not isinstance(v, dict)}
    values.update(
        {k.replace("-", "_"): v for k, v in data.items() if isinstance(v, dict) and k in fields}
    )
    if section and isinstance(data.get(section), dict):
        values.update({k.replace("-", "_"): v for k, v in data[section].items()})
    # A shared file serves several commands: keep only this command's keys.
    return {k: v for k, v in values.items() if k in fields}


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: ("***" if _secret_key(str(k)) and v else _mask(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_dsn(value)  # a password inside a DSN given as text
    if hasattr(value, "url") and callable(value.url):
        return value.url()
    return value


def _secret_key(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in ("password", "secret", "sasl.oauthbearer", "ssl.key"))


__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "ServiceSettings",
    "describe",
    "load",
]
