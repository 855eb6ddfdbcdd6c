"""TLS to MySQL through configuration: a private MariaDB with a generated CA and certificate that
refuses plaintext (``require_secure_transport``); the DSN options ``ssl_ca``, ``ssl_cert``,
``ssl_key``, ``ssl_verify_cert``, ``ssl_verify_identity`` and ``ssl_disabled`` must reach the
connection: the archive works over TLS, verification fails against a foreign CA, plaintext is
refused.

Not testable on these machines: TLS to the audit source (the emulator speaks plaintext only)
and SSL/SASL to Kafka (Tansu 0.6 listens in plaintext).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from consumer.setup import setup as consumer_setup
from consumer.targets import FileStore, TargetUrl
from ops.reconcile import KeyRange, Stores, reconcile
from tests.harness.mariadb import PrivateMariaDB
from tests.harness.oci_fixtures import insert_rows


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-subj", f"/CN={name}",
            cwd=directory)  # fmt: skip


def make_cert(directory: Path, name: str, ca: str, cn: str) -> None:
    (directory / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=directory)  # fmt: skip
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
            "-extfile", f"{name}.ext", cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateMariaDB, Path]]:
    certs = tmp_path_factory.mktemp("certs")
    make_ca(certs, "ca")
    make_ca(certs, "foreign-ca")
    make_cert(certs, "server", "ca", "127.0.0.1")
    make_cert(certs, "client", "ca", "archiver")
    server = PrivateMariaDB(
        base=tmp_path_factory.mktemp("tls-db"),
        extra_args=(
            f"--ssl-ca={certs / 'ca.pem'}",
            f"--ssl-cert={certs / 'server.pem'}",
            f"--ssl-key={certs / 'server-key.pem'}",
            "--require-secure-transport=ON",
        ),
    ).start()
    try:
        yield server, certs
    finally:
        server.cleanup()


def dsn(server: PrivateMariaDB, **options: Any) -> MySQLDsn:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return MySQLDsn.parse(f"mysql://root@127.0.0.1:{server.port}/tls_archive?{query}")


def cipher(target: MySQLDsn) -> str:
    conn = db.connect(target.with_database(None))
    try:
        cur = conn.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return str(cur.fetchall()[0][1])  # type: ignore[index]
    finally:
        conn.close()


def test_the_archive_works_over_verified_tls(
    tls_server: tuple[PrivateMariaDB, Path], tmp_path: Path
) -> None:
    server, certs = tls_server
    verified = dsn(server, ssl_ca=certs / "ca.pem", ssl_verify_cert="true",
                   ssl_verify_identity="true")  # fmt: skip
    assert cipher(verified)
    consumer_setup(verified)  # the archive's DDL over TLS
    insert_rows(verified, 50)
    objects = tmp_path / "objects"
    objects.mkdir()
    report = reconcile(
        Stores(archive=verified, dumps=(FileStore(objects), TargetUrl.parse(f"file://{objects}"))),
        KeyRange(),
    )  # reconcile's reader over TLS: the rows are there, no dump yet
    assert report.clean and report.keys["table"] == 50


def test_client_certificates_are_presented(tls_server: tuple[PrivateMariaDB, Path]) -> None:
    server, certs = tls_server
    with_cert = dsn(server, ssl_ca=certs / "ca.pem", ssl_cert=certs / "client.pem",
                    ssl_key=certs / "client-key.pem", ssl_verify_cert="true")  # fmt: skip
    assert cipher(with_cert)


def test_a_foreign_ca_fails_verification(tls_server: tuple[PrivateMariaDB, Path]) -> None:
    server, certs = tls_server
    foreign = dsn(server, ssl_ca=certs / "foreign-ca.pem", ssl_verify_cert="true")
    with pytest.raises(db.Error, match=r"(?i)certificate|ssl|tls"):
        cipher(foreign)


def test_plaintext_is_refused_by_the_server(tls_server: tuple[PrivateMariaDB, Path]) -> None:
    server, _ = tls_server
    assert cipher(dsn(server))  # the same account, TLS by default: accepted
    with pytest.raises(db.Error, match=r"(?i)secure transport|insecure|access denied"):
        cipher(dsn(server, ssl_disabled="true"))  # MariaDB answers plaintext with 1045
