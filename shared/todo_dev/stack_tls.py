"""The real stack with TLS on every connection (``make run STACK=real TLS=1``, tests/system/test_tls.py).

What changes from the plain stack, and nothing else:

* PostgreSQL takes TLS only (scripts/stack/postgres.sh with PG_TLS_DIR) and a password; the functions
  and the migration connect with ``verify-full`` against the stack's CA;
* Kafka's only client listener is SASL_SSL with SCRAM-SHA-512 (scripts/stack/kafka.sh with
  KAFKA_SECURITY=sasl_ssl; keytool makes its keystore from the CA); each daprd loads the managed
  profile's pub/sub component as it is deployed (knative/managed/pubsub-kafka-sasl.yaml: TLS, SCRAM, the
  CA from the todo-kafka Secret), the Secret being played by a local file store named ``kubernetes``;
* on-reminder's daprd mails through the SMTP binding with STARTTLS, trusting the stack's CA
  (``SSL_CERT_FILE``: the binding verifies against the system's trust store, which it replaces).

Every file lives in ``<stack dir>/certs`` and is made again on each start: a new CA, new passwords.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .certs import Authority
from .deploy import MANAGED_PUBSUB, Project, kafka_pubsub, load_yaml

KAFKA_USER = "todo"
SECRET_STORE = "kubernetes"  # noqa: S105 (the name the managed component reads its Secret through)


@dataclass(frozen=True)
class StackTLS:
    folder: Path
    ca_password: str
    kafka_password: str
    pg_password: str

    @classmethod
    def make(cls, folder: Path) -> StackTLS:
        """A new CA and the servers' certificates (localhost, 127.0.0.1) in ``folder``."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, mode=0o700)
        tls = cls(folder, secrets.token_urlsafe(16), secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        ca = Authority.new("todo stack CA")
        ca.write(folder, tls.ca_password)  # ca.crt, and ca.p12 for kafka.sh's keytool
        ca.issue("localhost", "127.0.0.1").write(folder / "postgres", "server")
        ca.issue("localhost", "127.0.0.1").write(folder, "smtp")
        return tls

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def smtp_cert(self) -> tuple[Path, Path]:
        """The certificate and key for an SMTP server on the stack's mail port (the stack runs none)."""
        return self.folder / "smtp.crt", self.folder / "smtp.key"

    def script_env(self) -> dict[str, str]:
        """What scripts/stack/postgres.sh and kafka.sh need to start their TLS-only servers."""
        return {"PG_TLS_DIR": str(self.folder / "postgres"), "PG_PASSWORD": self.pg_password,
                "KAFKA_SECURITY": "sasl_ssl", "KAFKA_TLS_CA_DIR": str(self.folder),
                "KAFKA_TLS_CA_PASSWORD": self.ca_password, "KAFKA_SASL_USER": KAFKA_USER,
                "KAFKA_SASL_PASSWORD": self.kafka_password}

    def function_env(self) -> dict[str, str]:
        """The functions' and the migration's TLS settings (todo.settings): nothing secret."""
        return {"TODO_DATABASE_SSLMODE": "verify-full", "TODO_DATABASE_SSLROOTCERT": str(self.ca_file),
                "TODO_SMTP_TLS": "starttls", "TODO_SMTP_CA": str(self.ca_file)}

    def sidecar_env(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": str(self.ca_file)}

    def kafka_client(self) -> dict[str, Any]:
        """librdkafka's settings (confluent_kafka) for a client of the SASL_SSL listener."""
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": KAFKA_USER,
                "sasl.password": self.kafka_password, "ssl.ca.location": str(self.ca_file)}

    def dapr_resources(self, brokers: str, project: Project | None = None) -> Path:
        """dapr-components/ with the managed profile's pub/sub in place of the plain one, and its Secret."""
        project = project or Project()
        out = self.folder / "dapr-components"
        out.mkdir(exist_ok=True)
        plain_pubsub, _ = kafka_pubsub(project)
        for path, _docs in project.dapr_components():
            if path != plain_pubsub:
                shutil.copy(project.root / path, out / Path(path).name)
        shutil.copy(project.root / MANAGED_PUBSUB, out / "pubsub.yaml")
        [managed] = load_yaml(project.root / MANAGED_PUBSUB)
        store = managed["auth"]["secretStore"]
        secret = {m["secretKeyRef"]["name"] for m in managed["spec"]["metadata"] if "secretKeyRef" in m}
        if store != SECRET_STORE or len(secret) != 1:
            raise RuntimeError(f"{MANAGED_PUBSUB}: expected one Secret read through {SECRET_STORE}, got "
                               f"{sorted(secret)} through {store}")
        (self.folder / "secrets.json").write_text(json.dumps({secret.pop(): {
            "brokers": brokers, "protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "user": KAFKA_USER,
            "password": self.kafka_password, "ca.crt": self.ca_file.read_text()}}))
        (self.folder / "secrets.json").chmod(0o600)
        (out / "secretstore-kubernetes.yaml").write_text(yaml.safe_dump({
            "apiVersion": "dapr.io/v1alpha1", "kind": "Component", "metadata": {"name": SECRET_STORE},
            "spec": {"type": "secretstores.local.file", "version": "v1", "metadata": [
                {"name": "secretsFile", "value": str(self.folder / "secrets.json")},
                {"name": "multiValued", "value": "true"}]}}, sort_keys=False))
        return out
