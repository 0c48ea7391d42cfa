"""Outgoing webhooks against DNS rebinding: the target's name is resolved once, the answer is
checked, and the request goes to that checked address (plain HTTP and TLS), to a real receiver.

The name server here is a function with getaddrinfo's shape that answers differently on each
question, as a rebinding name server does; the names are under ``.invalid``, which no real
resolver answers, so a request that looked the name up again could not connect at all.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailtally.webhooks.targets import TargetRefused, post

from .support.receiver import Receiver

NAME = "hooks.rebind.invalid"


class RebindingDns:
    """Answers ``first`` to the first question and ``later`` to every other one."""

    def __init__(self, first: str, later: str = "10.0.0.1"):
        self.first, self.later, self.asked = first, later, 0

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        assert host == NAME
        address = self.first if self.asked == 0 else self.later
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def _port(receiver: Receiver) -> int:
    return int(receiver.server.server_address[1])


def test_the_request_goes_to_the_checked_address_with_the_name_as_host() -> None:
    dns = RebindingDns("127.0.0.1")
    with Receiver() as receiver, httpx.Client(timeout=5) as client:
        r = post(client, f"http://{NAME}:{_port(receiver)}/hook?x=1", b"{}", {"content-type": "application/json"},
                 allow_private=True, lookup=dns)
        assert r.status_code == 200
        [got] = receiver.wait_for(1)
    assert dns.asked == 1  # one question: the checked answer is the one connected to
    assert got.headers["host"] == f"{NAME}:{_port(receiver)}"
    assert got.body == b"{}"


def test_a_private_answer_is_refused_and_nothing_is_sent() -> None:
    with Receiver() as receiver, httpx.Client(timeout=5) as client:
        with pytest.raises(TargetRefused, match="private"):
            post(client, f"http://{NAME}:{_port(receiver)}/hook", b"{}", {}, allow_private=False,
                 lookup=RebindingDns("127.0.0.1"))
        assert receiver.requests == []


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_over_tls_the_certificate_is_checked_against_the_name(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    receiver = Receiver()
    receiver.server.socket = server_ctx.wrap_socket(receiver.server.socket, server_side=True)
    with receiver:
        url = f"https://{NAME}:{_port(receiver)}/hook"
        with httpx.Client(timeout=5, verify=trusting) as client:
            r = post(client, url, b"{}", {}, allow_private=True, lookup=RebindingDns("127.0.0.1"))
            assert r.status_code == 200
        # A certificate for another name is refused although the address is the same.
        with httpx.Client(timeout=5, verify=trusting) as client, pytest.raises(httpx.ConnectError):
            post(client, url.replace(NAME, "other.rebind.invalid"), b"{}", {}, allow_private=True,
                 lookup=lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    assert len(receiver.requests) == 1
