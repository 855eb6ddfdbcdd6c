"""Wiring of ``verify``'s seal check: keys and the seal target's checkpoints from the settings."""

from __future__ import annotations

from auditstream.signing import Keyring
from ops.verify.config import VerifySettings
from ops.verify.seals import SealCheck


def seal_check(settings: VerifySettings) -> SealCheck | None:
    """The seal check of ``--seal-public-key`` / ``--seal-target``; None without keys.

    Raises:
        ConfigError: a key cannot be read, or a seal target without a key.
        ObjectStoreError: the seal target cannot be read.
    """
    from auditstream.errors import ConfigError

    if not settings.seal_public_key:
        if settings.seal_target is not None or settings.require_seal:
            raise ConfigError(
                "--seal-target and --require-seal need --seal-public-key (the keys to check with)"
            )
        return None
    keys = Keyring.load(settings.seal_public_key)
    if settings.seal_target is None:
        return SealCheck(keys, require=settings.require_seal)
    from consumer.seals import MalformedCheckpoint, read_objects
    from consumer.targets import FileStore, TargetUrl

    target = TargetUrl.parse(settings.seal_target)
    if target.scheme == "file":
        assert target.path is not None  # noqa: S101 - parse() sets it for file://
        store = FileStore(target.path)
    else:
        from consumer.upload import OciStore

        options = settings.oci_options()
        store = OciStore(target, options)  # type: ignore[assignment]
    only = set(settings.server_uuid)
    bad: list[MalformedCheckpoint] = []
    records = [
        (n, r) for n, r in read_objects(store, target, bad) if not only or r["server_uuid"] in only
    ]
    malformed = []
    for exc in bad:
        uuid = str(exc.context["server_uuid"])  # the folder read_objects found it in
        if not only or uuid in only:
            malformed.append((uuid, str(exc.context["object"]), exc.message))
    return SealCheck.with_objects(keys, records, malformed, require=settings.require_seal)
