"""The cluster deployment, generated from the route table and the subscriptions.

``python -m todo_dev.deploy`` (re)writes every generated file under ``knative/`` and ``skaffold.yaml``;
``--check`` only says which ones are stale (``tests/deploy`` fails on the same). What it derives:

* a Knative Service per function in ``functions/`` (HTTP functions from ``ROUTES``, event functions from
  ``SUBSCRIPTIONS``), with a Dapr sidecar when a Dapr component deployed to the cluster scopes it;
* the public gateway: ``todo proxy`` (the route table itself) forwarding to the cluster-local functions;
* a KafkaSource per subscription, a dead-letter KafkaSink per consumed topic (``<topic>.dlq``);
* a PingSource per tick (``TICKS``, and each Dapr cron binding), since a scaled-to-zero pod has no
  sidecar to tick it;
* the migration Job, the Kafka topics Job of the in-cluster Kafka, and skaffold's artifacts and profiles.

One module a job: ``model`` (the project it reads and the cluster's fixed names), ``knative`` (Services
and Jobs), ``kafka`` (sources, dead-letter sinks, topics, the managed pub/sub), ``schedules``
(PingSources), ``skaffold``, ``files`` (render, compare, write) and ``cli``. This is tooling: the images
do not contain it (the Dockerfile copies ``shared/todo`` only).

Adding a function, a route or a tick is a row in ``todo.routes`` (a newly produced topic is also a row
in ``PRODUCERS``), then ``python -m todo_dev.deploy``. A tick's Dapr cron binding in ``dapr-components/``
is generated too.

``python -m todo_dev.deploy --kafka-bootstrap HOST:PORT[,...] --kafka-auth-secret NAME --out DIR`` writes
the Kafka-facing resources (KafkaSources and KafkaSinks) for a managed Kafka with SASL over TLS into DIR
instead: the brokers of a deployment are not committed here.
"""

from __future__ import annotations

from .cli import main
from .files import dump, render, stale, write
from .kafka import dead_letter_sink, event_documents, kafka_pubsub, kafka_source, managed_pubsub, topics_job
from .knative import dapr_annotations, function_service, gateway_service, gateway_upstreams, migration_job
from .model import (
    ALWAYS_ON,
    APP_PORT,
    APP_SECRET,
    DAPR_METRICS_PORT,
    DATABASE_TLS_DIR,
    DATABASE_TLS_SECRET,
    DATABASE_TLS_SETTINGS,
    GATEWAY,
    KAFKA_SECRET,
    LIBRARY_IMAGE,
    MIN_SCALE_REASON,
    NAMESPACE,
    PRODUCERS,
    QUEUE_PROXY_PORTS,
    ROOT,
    WEBSOCKET_FUNCTIONS,
    Doc,
    Function,
    GeneratorError,
    Kafka,
    Project,
    cluster_replacement,
    load_yaml,
)
from .schedules import cluster_schedule, cron_binding, ping_sources, tick_windows
from .skaffold import MANAGED_KAFKA_DIR, MANAGED_PUBSUB, skaffold_config

__all__ = [
    "ALWAYS_ON", "APP_PORT", "APP_SECRET", "DAPR_METRICS_PORT", "DATABASE_TLS_DIR",
    "DATABASE_TLS_SECRET", "DATABASE_TLS_SETTINGS", "GATEWAY", "KAFKA_SECRET",
    "LIBRARY_IMAGE", "MANAGED_KAFKA_DIR", "MANAGED_PUBSUB", "MIN_SCALE_REASON", "NAMESPACE", "PRODUCERS",
    "QUEUE_PROXY_PORTS", "ROOT", "WEBSOCKET_FUNCTIONS", "Doc", "Function", "GeneratorError", "Kafka", "Project",
    "cluster_replacement", "cluster_schedule", "cron_binding", "dapr_annotations", "dead_letter_sink", "dump",
    "event_documents", "function_service", "gateway_service", "gateway_upstreams", "kafka_pubsub",
    "kafka_source", "load_yaml", "main", "managed_pubsub", "migration_job", "ping_sources", "render",
    "skaffold_config", "stale", "tick_windows", "topics_job", "write",
]
