"""Test certificates: a self-signed serving certificate for the API emulator's HTTPS listener,
and a CA with a Redis node certificate (:func:`node_certs`) for TLS Redis Clusters.

kubectl (client-go's clientcmd) sends a kubeconfig's bearer token only over TLS, so the
emulator serves HTTPS next to plain HTTP for it. One certificate per test process, for
127.0.0.1, valid for a day; the kubeconfig carries it as the cluster's CA.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServingCert:
    cert_pem: bytes  # also the CA clients trust (self-signed)
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _sign(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    sans: list[x509.GeneralName],
    *,
    ca: bool,
) -> x509.Certificate:
    """A certificate for ``key`` valid for a day (from 5 minutes ago), signed by
    ``issuer_key``; ``ca`` makes it a CA (signing leaf certificates only)."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@cache
def serving_cert(host: str = "127.0.0.1") -> ServingCert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("headroom-kube-emulator")
    sans = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
    return ServingCert(_pem(_sign(name, key, name, key, sans, ca=True)), _key_pem(key))


def server_context(cert: ServingCert, workdir: Path) -> ssl.SSLContext:
    """An SSL server context for ``cert`` (the stdlib loads key pairs only from files)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = workdir / "apiserver.crt", workdir / "apiserver.key"
    cert_file.write_bytes(cert.cert_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@dataclass(frozen=True)
class NodeCerts:
    """A CA and one certificate it signed, as cert-manager lays them out in a Secret."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def secret_data(self) -> dict[str, str]:
        """``data`` of a ``kubernetes.io/tls`` Secret: tls.crt, tls.key, ca.crt (base64)."""
        raw = {"tls.crt": self.cert_pem, "tls.key": self.key_pem, "ca.crt": self.ca_pem}
        return {k: base64.b64encode(v).decode() for k, v in raw.items()}


def node_certs(dns_names: tuple[str, ...] = ("*.redis.svc",)) -> NodeCerts:
    """A throwaway CA and a certificate it signed for Redis nodes, good for serving and for
    the nodes' own connections to each other (no extended key usage: any purpose)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("headroom-test-redis-ca")
    ca = _sign(ca_name, ca_key, ca_name, ca_key, [], ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    cert = _sign(_name("redis-node"), key, ca_name, ca_key, sans, ca=False)
    return NodeCerts(_pem(ca), _pem(cert), _key_pem(key))
