"""Certificates for the TLS tests: a CA the client is told to trust, one it is not, and server contexts."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from todo_dev.certs import Authority, Issued


@dataclass(frozen=True)
class Pki:
    """``trusted`` signs the servers' certificates; ``stranger`` is a CA nobody was told to trust."""

    folder: Path
    trusted: Authority
    stranger: Authority

    @classmethod
    def make(cls, folder: Path) -> Pki:
        pki = cls(folder, Authority.new("todo test CA"), Authority.new("a CA nobody trusts"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ca.crt").write_bytes(pki.trusted.cert_pem)
        (folder / "stranger.crt").write_bytes(pki.stranger.cert_pem)
        return pki

    @property
    def ca_file(self) -> str:
        return str(self.folder / "ca.crt")

    @property
    def stranger_file(self) -> str:
        return str(self.folder / "stranger.crt")

    def server_context(self, *names: str, by_stranger: bool = False) -> ssl.SSLContext:
        """A server's context with a certificate for ``names``, signed by the trusted CA (or the stranger)."""
        issued = (self.stranger if by_stranger else self.trusted).issue(*names)
        return server_context(issued, self.folder, "-".join(names) + ("-stranger" if by_stranger else ""))


def server_context(issued: Issued, folder: Path, stem: str) -> ssl.SSLContext:
    cert, key = issued.write(folder, stem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
