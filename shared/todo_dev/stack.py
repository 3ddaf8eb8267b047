"""The real stack on one machine: PostgreSQL, Kafka, and per function a functions-framework process
with its own daprd sidecar, plus the local gateway on one port. ``make run STACK=real`` and the
system tests both use it.

Every child runs in its own process group, so stopping the stack (or a test killing one function)
leaves no orphan. Every child's output goes, a JSON object per line tagged with the process name,
into one log file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from todo.routes import present
from todo.settings import variables

from .deploy.model import FUNCTION_WORKERS, Project
from .launch import FromSources, Launch, Launcher
from .ports import DEV, DEV_TRACING, StackPorts, TracingPorts
from .ready import answers, wait_until_ready
from .stack_tls import StackTLS

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "stack"
CACHE = Path(os.environ.get("TODO_CACHE", Path.home() / ".cache" / "todo"))


def functions_present() -> tuple[str, ...]:
    return present(ROOT / "functions")


@dataclass
class Ports:
    app: int
    dapr_http: int
    dapr_grpc: int
    dapr_internal: int
    metrics: int


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


@dataclass
class Stack:
    stack_dir: Path
    jwt_secret: str
    base_port: int = DEV.base
    gateway_port: int = DEV.gateway
    pg_port: int = DEV.postgres
    kafka_port: int = DEV.kafka
    smtp_port: int = DEV.smtp  # where on-reminder's daprd sends mail (the email component)
    tracing: TracingPorts = DEV_TRACING  # its Jaeger: every daprd, and every function, exports its spans there
    export_traces: bool = True  # the functions' own spans too (bench P1/P2 compare with and without)
    export_delay_ms: int | None = 200  # the batch processor's delay; None: the SDK's 5 s, as the cluster runs
    statement_stats: bool = False  # PostgreSQL loads pg_stat_statements (bench P2 counts a create's statements)
    functions: tuple[str, ...] = field(default_factory=functions_present)
    # How each process starts: from the work tree's sources (make run STACK=real), or as the images
    # ship it (todo_dev.launch.AsShipped: the system tests).
    launcher: Launcher = field(default_factory=FromSources)
    # Webhooks to a test's receiver: plain http on loopback (never in a cluster: SSRF, clear text).
    webhooks_to_loopback: bool = False
    tls: bool = False  # every connection TLS (todo_dev.stack_tls): make run STACK=real TLS=1
    children: dict[str, Child] = field(default_factory=dict)

    @classmethod
    def on(cls, ports: StackPorts, stack_dir: Path, jwt_secret: str, **kwargs: Any) -> Stack:
        """A stack listening on ``ports`` (see todo_dev.ports)."""
        return cls(stack_dir, jwt_secret, base_port=ports.base, gateway_port=ports.gateway,
                   pg_port=ports.postgres, kafka_port=ports.kafka, smtp_port=ports.smtp, tracing=ports.tracing,
                   **kwargs)

    def __post_init__(self) -> None:
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.stack_dir / "logs" / "stack.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = self.log_path.open("a", buffering=1)
        self._log_lock = threading.Lock()
        self.certs: StackTLS | None = StackTLS.make(self.stack_dir / "certs") if self.tls else None

    # -- engines ------------------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        password = f":{self.certs.pg_password}" if self.certs else ""
        return f"postgresql+pg8000://todo{password}@127.0.0.1:{self.pg_port}/todo"

    @property
    def database_sslmode(self) -> str:
        return "verify-full" if self.certs else "disable"  # the plain stack's PostgreSQL has no TLS

    def kafka_client(self) -> dict[str, Any]:
        """A librdkafka (confluent_kafka) client's settings for this stack's Kafka."""
        return {"bootstrap.servers": self.kafka_bootstrap, **(self.certs.kafka_client() if self.certs else {})}

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def jaeger_query_url(self) -> str:
        """Jaeger's query API and UI (/api/traces?service=NAME)."""
        return f"http://127.0.0.1:{self.tracing.query}"

    def _script(self, script: str, *args: str) -> None:
        env = {**os.environ, "TODO_STACK_DIR": str(self.stack_dir), "PGPORT": str(self.pg_port),
               "KAFKA_PORT": str(self.kafka_port), "JAEGER_OTLP_GRPC_PORT": str(self.tracing.otlp_grpc),
               "JAEGER_OTLP_HTTP_PORT": str(self.tracing.otlp_http), "JAEGER_QUERY_PORT": str(self.tracing.query),
               "JAEGER_QUERY_GRPC_PORT": str(self.tracing.query_grpc),
               "KAFKA_TOPICS": " ".join(f"{topic}:{parts}" for topic, parts in Project().kafka_topics()),
               **(self.certs.script_env() if self.certs else {}),
               **({"PG_STAT_STATEMENTS": "1"} if self.statement_stats else {})}
        subprocess.run([str(SCRIPTS / script), *args], check=True, env=env)

    def start_engines(self) -> None:
        self._script("install-daprd.sh")
        self._script("install-kafka.sh")
        self._script("install-jaeger.sh")
        self._script("postgres.sh", "start")
        self._script("kafka.sh", "start")
        self._script("jaeger.sh", "start")

    def stop_kafka(self) -> None:
        self._script("kafka.sh", "stop")

    def start_kafka(self) -> None:
        self._script("kafka.sh", "start")

    def stop_postgres(self) -> None:
        self._script("postgres.sh", "stop")

    def start_postgres(self) -> None:
        self._script("postgres.sh", "start")

    def stop_engines(self) -> None:
        self._script("jaeger.sh", "stop")
        self._script("kafka.sh", "stop")
        self._script("postgres.sh", "stop")

    def migrate(self) -> None:
        launch = self.launcher.migrate(self.stack_env("migrate"))
        subprocess.run(launch.argv, check=True, env=launch.env, cwd=launch.cwd)

    # -- functions ----------------------------------------------------------------------------------

    def ports(self, function: str) -> Ports:
        return self._slot(self.functions.index(function))

    def replica_ports(self, index: int) -> Ports:
        """The ports of the ``index``-th extra replica (``start_function(..., ports=, name=)``), past every
        function's own."""
        return self._slot(len(self.functions) + index)

    def _slot(self, n: int) -> Ports:
        base = self.base_port + 10 * n
        return Ports(base, base + 1, base + 2, base + 3, base + 4)

    def env_for(self, function: str, ports: Ports | None = None) -> dict[str, str]:
        """The developer's environment with the stack's variables: what daprd (and a benchmark) runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TODO_", "DAPR_"))}
        env.update(self.stack_env(function, ports))
        return env

    def stack_env(self, function: str, ports: Ports | None = None) -> dict[str, str]:
        """The variables of one process: those of todo.settings the person running the stack set
        (TODO_LOG_LEVEL, TODO_WS_ORIGINS, …), then the stack's own (engines, ports, the sidecar's)."""
        documented = {name for name, _, _ in variables()}
        env = {k: v for k, v in os.environ.items() if k in documented}
        env |= {
            "TODO_DATABASE_URL": self.database_url,
            "TODO_JWT_SECRET": self.jwt_secret,
            "TODO_EVENTS": "dapr",
            "TODO_DATA_DIR": str(self.stack_dir / "data"),
            "KAFKA_BROKERS": self.kafka_bootstrap,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "DAPR_HOST_IP": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "TODO_DATABASE_SSLMODE": self.database_sslmode,
            **(self.certs.function_env() if self.certs else {}),
        }
        if self.webhooks_to_loopback:
            env["TODO_WEBHOOK_ALLOW_PRIVATE"] = env["TODO_WEBHOOK_ALLOW_HTTP"] = "1"
        if ports is None and function in self.functions:
            ports = self.ports(function)
        if ports is not None:
            env.update({"DAPR_HTTP_PORT": str(ports.dapr_http), "DAPR_GRPC_PORT": str(ports.dapr_grpc),
                        "PORT": str(ports.app)})
        return env

    @cached_property
    def dapr_resources(self) -> Path:
        """What each daprd loads. Written once: daprd reloads itself when a file there changes."""
        return self.certs.dapr_resources(self.kafka_bootstrap) if self.certs else ROOT / "dapr-components"

    def app_env(self, function: str, ports: Ports | None = None) -> dict[str, str]:
        """A function's own variables: no secrets among them; it reads them from its sidecar's store
        (dapr-components/secretstore.yaml), which holds them in the sidecar's environment."""
        env = self.stack_env(function, ports)
        for name in ("TODO_DATABASE_URL", "TODO_JWT_SECRET", "KAFKA_BROKERS", "SMTP_HOST", "SMTP_PORT"):
            env.pop(name)
        env["TODO_SECRET_STORE"] = "envstore"  # noqa: S105 (the store's name, not a secret)
        env["WORKERS"] = str(FUNCTION_WORKERS)  # as many processes as a pod runs (knative/functions.yaml)
        env.update(self.tracing_env())
        return env

    def tracing_env(self) -> dict[str, str]:
        """A function's OTLP exporter: Jaeger's OTLP/HTTP port (only the function's: daprd would read the
        same variable as its own, and it exports over gRPC by its --config)."""
        if not self.export_traces:
            return {}
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.tracing.otlp_http}"}
        if self.export_delay_ms is not None:
            # A short batch delay: a trace is complete in Jaeger a moment after the change, not 5 s later.
            env["OTEL_BSP_SCHEDULE_DELAY"] = str(self.export_delay_ms)
        return env

    def start_function(self, function: str, *, app: bool = True, sidecar: bool = True,
                       ports: Ports | None = None, name: str | None = None) -> None:
        """One function and its sidecar; ``ports`` and ``name`` start another replica of it."""
        ports = ports or self.ports(function)
        name = name or function
        if app:
            self._launch(name, self.launcher.function(function, ports.app, self.app_env(function, ports)))
            self._wait_http(f"http://127.0.0.1:{ports.app}/healthz", name, expect=(200,))
        if sidecar:
            self._spawn(f"{name}.daprd", *self.sidecar_command(function, ports))
            self._wait_http(f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz", f"{name}.daprd",
                            expect=(204,))

    def sidecar_command(self, function: str, ports: Ports | None = None) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of a function's daprd (bench P1 starts one beside a cold start too)."""
        ports = ports or self.ports(function)
        env = self.env_for(function, ports)
        if self.certs:
            env.update(self.certs.sidecar_env())
        return [
            str(CACHE / "bin" / "daprd"), "--app-id", function, "--app-port", str(ports.app),
            "--app-protocol", "http", "--dapr-http-port", str(ports.dapr_http),
            "--dapr-grpc-port", str(ports.dapr_grpc), "--dapr-internal-grpc-port", str(ports.dapr_internal),
            "--metrics-port", str(ports.metrics), "--resources-path", str(self.dapr_resources),
            "--log-as-json", "--log-level", "info", "--dapr-listen-addresses", "127.0.0.1",
            "--dapr-graceful-shutdown-seconds", "5", "--config", str(SCRIPTS / "dapr-config.yaml")], \
            {**env, "TODO_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.tracing.otlp_grpc}"}

    def app_command(self, function: str, port: int) -> list[str]:
        return self.launcher.function(function, port, {}).argv

    def start_functions(self) -> None:
        for function in self.functions:
            self.start_function(function)

    def start_gateway(self) -> None:
        upstreams = {f: f"http://127.0.0.1:{self.ports(f).app}" for f in self.functions}
        self._launch("gateway", self.launcher.gateway(self.gateway_port, upstreams, self.stack_env("gateway")))
        self._wait_http(f"http://127.0.0.1:{self.gateway_port}/healthz", "gateway", expect=(200,))

    def up(self) -> None:
        self.start_engines()
        self.migrate()
        self.start_functions()
        self.start_gateway()

    # -- processes ----------------------------------------------------------------------------------

    def _launch(self, name: str, launch: Launch) -> None:
        self._spawn(name, launch.argv, launch.env, launch.cwd)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.stop(name)
        with self._log_lock:
            if self._log.closed:  # down(engines=False), then a function started again on the same engines
                self._log = self.log_path.open("a", buffering=1)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd)
        pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True, name=f"log-{name}")
        pump.start()
        self.children[name] = Child(name, proc, pump)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            try:
                entry: Any = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"message": line}
            entry = {"process": name, **entry}
            with self._log_lock:
                self._log.write(json.dumps(entry, default=str) + "\n")

    def _wait_http(self, url: str, name: str, expect: tuple[int, ...], timeout: float = 60.0) -> None:
        wait_until_ready(answers(url, expect), timeout=timeout, process=self.children[name].proc,
                         what=f"{name} at {url} (see {self.log_path})")

    def kill(self, name: str) -> None:
        """SIGKILL a process group, as a crash would."""
        child = self.children.pop(name, None)
        if child is not None and child.proc.poll() is None:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()

    def stop(self, name: str, timeout: float = 15.0) -> None:
        child = self.children.pop(name, None)
        if child is None or child.proc.poll() is not None:
            return
        os.killpg(child.proc.pid, signal.SIGTERM)
        try:
            child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()

    def down(self, engines: bool = True) -> None:
        # Gateway first, then the sidecars (they stop pulling), then the apps.
        order = sorted(self.children, key=lambda n: (n != "gateway", not n.endswith(".daprd")))
        pumps = [self.children[name].pump for name in order]
        for name in order:
            self.stop(name)
        if engines:
            self.stop_engines()
        for pump in pumps:  # their last lines are still in the pipes: written before the file closes
            pump.join(timeout=2)
        with self._log_lock:
            self._log.close()


@contextmanager
def running(stack: Stack, engines: bool = True) -> Iterator[Stack]:
    try:
        stack.up()
        yield stack
    finally:
        stack.down(engines=engines)
