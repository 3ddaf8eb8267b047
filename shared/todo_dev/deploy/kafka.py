"""Kafka-facing resources: a KafkaSource per subscription, a dead-letter KafkaSink per consumed topic,
the topics Job of the in-cluster Kafka, and the Dapr pub/sub component for a managed Kafka."""

from __future__ import annotations

from todo.routes import Subscription

from .knative import SECURITY_CONTEXT, job, ksvc_ref, labels, secret_env
from .model import (
    KAFKA_IMAGE,
    KAFKA_SECRET,
    NAMESPACE,
    PART_OF,
    TOPICS_JOB,
    Doc,
    GeneratorError,
    Kafka,
    Project,
    dlq_sink_name,
    dlq_topic,
    source_name,
)


def kafka_source(sub: Subscription, kafka: Kafka) -> Doc:
    spec: Doc = {
        "bootstrapServers": list(kafka.bootstrap),
        "topics": [sub.topic],
        "consumerGroup": f"knative-{source_name(sub)}",
        "initialOffset": "earliest",
        "ordering": "ordered",  # one user's events stay in order (the partition key is the user id)
    }
    if kafka.auth_secret is not None:
        spec["net"] = _kafka_net(kafka.auth_secret)
    # 5xx and timeouts are retried about a minute (1+2+…+32 s); 400 is poison: straight to the DLQ sink.
    spec["delivery"] = {
        "retry": 6,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT1S",
        "deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "KafkaSink",
                                   "name": dlq_sink_name(sub.topic)}},
    }
    spec["sink"] = {"ref": ksvc_ref(sub.function), "uri": sub.path}
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "KafkaSource",
        "metadata": {"name": source_name(sub), "namespace": NAMESPACE,
                     "labels": labels(sub.function, "event-source")},
        "spec": spec,
    }


def _kafka_net(secret: str) -> Doc:
    def ref(key: str) -> Doc:
        return {"secretKeyRef": {"name": secret, "key": key}}

    return {"sasl": {"enable": True, "user": ref("user"), "password": ref("password"),
                     "type": ref("sasl.mechanism")},
            "tls": {"enable": True, "caCert": ref("ca.crt")}}


def dead_letter_sink(topic: str, kafka: Kafka) -> Doc:
    spec: Doc = {
        "topic": dlq_topic(topic),
        "bootstrapServers": list(kafka.bootstrap),
        # Structured: the record value is the whole CloudEvent JSON, as in the DLQ topics daprd writes.
        "contentMode": "structured",
    }
    if kafka.auth_secret is not None:
        spec["auth"] = {"secret": {"ref": {"name": kafka.auth_secret}}}
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "KafkaSink",
        "metadata": {"name": dlq_sink_name(topic), "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/component": "dead-letter", "app.kubernetes.io/part-of": PART_OF}},
        "spec": spec,
    }


def event_documents(project: Project, kafka: Kafka) -> list[Doc]:
    consumed = project.consumed()
    topics = dict.fromkeys(s.topic for s in consumed)
    return [*(kafka_source(s, kafka) for s in consumed), *(dead_letter_sink(t, kafka) for t in topics)]



def topics_job(project: Project) -> Doc:
    wanted = project.kafka_topics()
    lines = ["set -e"] + [
        f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --create --if-not-exists "
        f"--topic {topic} --partitions {parts} --replication-factor 1" for topic, parts in wanted]
    topics = job(TOPICS_JOB, "kafka-topics", {
        "name": "topics", "image": KAFKA_IMAGE, "command": ["sh", "-c", "\n".join(lines) + "\n"],
        "env": [secret_env("BOOTSTRAP", KAFKA_SECRET, "brokers")],
    }, backoff=10)
    topics["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        **SECURITY_CONTEXT, "runAsUser": 1000}  # the image's appuser
    return topics


def kafka_pubsub(project: Project) -> tuple[str, Doc]:
    """The pubsub.kafka component of dapr-components/ and its file."""
    found = [(path, d) for path, docs in project.dapr_components() for d in docs
             if d.get("kind") == "Component" and d.get("spec", {}).get("type") == "pubsub.kafka"]
    if len(found) != 1:
        raise GeneratorError(f"expected one pubsub.kafka component in dapr-components/, found {len(found)}")
    return found[0]


def managed_pubsub(project: Project) -> Doc:
    """dapr-components/ pubsub with SASL over TLS, every secret from the todo-kafka Secret."""
    _, local = kafka_pubsub(project)

    def secret(name: str, key: str) -> Doc:
        return {"name": name, "secretKeyRef": {"name": KAFKA_SECRET, "key": key}}

    replaced = {
        "brokers": secret("brokers", "brokers"),
        "authType": {"name": "authType", "value": "password"},
        "disableTls": {"name": "disableTls", "value": "false"},
    }
    metadata = [replaced.get(m["name"], m) for m in local["spec"]["metadata"]]
    metadata += [m for name, m in replaced.items() if name not in {m["name"] for m in metadata}]
    metadata += [secret("saslUsername", "user"), secret("saslPassword", "password"),
                 {"name": "saslMechanism", "value": "SHA-512"},
                 secret("caCert", "ca.crt")]  # the brokers' CA, as the KafkaSources have it
    doc: Doc = {
        "apiVersion": local["apiVersion"], "kind": "Component",
        "metadata": {"name": local["metadata"]["name"], "namespace": NAMESPACE},
        "spec": {**local["spec"], "metadata": metadata},
        "auth": {"secretStore": "kubernetes"},  # Dapr's built-in store: Secrets of the namespace
    }
    if "scopes" in local:
        doc["scopes"] = list(local["scopes"])
    return doc


MANAGED_PUBSUB_COMMENT = """\
EXAMPLE for a managed Kafka (Confluent Cloud, Amazon MSK with SCRAM, Aiven, Azure Event Hubs, OCI
Streaming …): dapr-components/pubsub.yaml authenticated with SASL over TLS. skaffold's managed-kafka
profile deploys it in place of that file (same name, which the functions publish to). Every value comes
from the Secret todo-kafka through Dapr's built-in Kubernetes secret store:
  kubectl -n todo create secret generic todo-kafka \\
    --from-literal=brokers=b-1.example.com:9096,b-2.example.com:9096 \\
    --from-literal=protocol=SASL_SSL --from-literal=sasl.mechanism=SCRAM-SHA-512 \\
    --from-literal=user=todo --from-literal=password='…' --from-file=ca.crt=brokers-ca.pem
(protocol, sasl.mechanism, user, password and ca.crt are the keys the KafkaSinks and KafkaSources read
too; ca.crt is the CA that signed the brokers' certificates, the provider's public root CA if it uses one.
docs/deployment-tls.md has the whole list.)
saslMechanism: SHA-512 here; SHA-256, or PLAINTEXT for SASL/PLAIN (Event Hubs, Confluent Cloud)."""
