#!/usr/bin/env bash
# Single-node Apache Kafka 4.x (KRaft, broker+controller in one JVM) for local runs and tests.
#
#   scripts/stack/kafka.sh start  [--port N]   # install if needed, start, wait, create topics
#   scripts/stack/kafka.sh stop                # SIGTERM, wait, SIGKILL if it must
#   scripts/stack/kafka.sh status              # exit 0 when running and answering
#   scripts/stack/kafka.sh restart [--port N]
#   scripts/stack/kafka.sh topics              # list topics
#   scripts/stack/kafka.sh bootstrap           # print host:port for bootstrap.servers
#   scripts/stack/kafka.sh tool CLASS [ARGS]   # run a Kafka CLI main class on the broker's classpath,
#        e.g. tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$(kafka.sh bootstrap)" --topic t
#   scripts/stack/kafka.sh clean               # stop and delete the data dir
#
# Environment:
#   KAFKA_PORT (9092; --port wins)  KAFKA_CONTROLLER_PORT (broker port + 1)
#   TODO_STACK_DIR ($PWD/.stack): state in $TODO_STACK_DIR/kafka (data/, server.properties,
#     kafka.pid, kafka.log)
#   TODO_CACHE ($HOME/.cache/todo), KAFKA_VERSION (install-kafka.sh default)
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx1g), KAFKA_START_TIMEOUT (120 s), KAFKA_STOP_TIMEOUT (30 s)
#   KAFKA_TOPICS: topics created on start, "name:partitions" separated by spaces
#   KAFKA_SECURITY: plaintext (default) or sasl_ssl, fixed when the data dir is formatted. sasl_ssl: the
#     only client listener is SASL_SSL with SCRAM-SHA-512 (the controller's is SSL), as on a managed
#     Kafka. It needs
#       KAFKA_TLS_CA_DIR        ca.crt and ca.p12 (the CA's key, PKCS#12 entry "ca"): keytool makes the
#                               broker's keystore and signs its certificate (localhost, 127.0.0.1) with it
#       KAFKA_TLS_CA_PASSWORD   ca.p12's password
#       KAFKA_SASL_USER, KAFKA_SASL_PASSWORD   the clients' SCRAM user (created at format time; its
#                               password is set again on every later start)
#     The broker's own SCRAM user (admin) and the keystores' password are generated into
#     $TODO_STACK_DIR/kafka/tls/; $TODO_STACK_DIR/kafka/client.properties logs the CLI tools in as admin
#     (`kafka.sh tool CLASS … --command-config "$TODO_STACK_DIR/kafka/client.properties"`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TODO_CACHE=${TODO_CACHE:-$HOME/.cache/todo}
STACK_DIR=${TODO_STACK_DIR:-$PWD/.stack}
dir="$STACK_DIR/kafka"
data="$dir/data"
props="$dir/server.properties"
pidfile="$dir/kafka.pid"
logfile="$dir/kafka.log"
portfile="$dir/port"
tls="$dir/tls"
security_file="$dir/security"  # the security the data dir was formatted with
SECURITY=${KAFKA_SECURITY:-plaintext}
case "$SECURITY" in
  plaintext|sasl_ssl) ;;
  *) echo "kafka.sh: KAFKA_SECURITY must be plaintext or sasl_ssl, got $SECURITY" >&2; exit 2 ;;
esac
# The stack passes its own list (todo_dev.deploy.model.Project.kafka_topics); this default matches it.
DEFAULT_TOPICS="task-events:12 reminders:12 task-updates:12 task-events.dlq:1 reminders.dlq:1 task-updates.dlq:1"
TOPICS=${KAFKA_TOPICS:-$DEFAULT_TOPICS}

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cmd=${1:-}; [ $# -gt 0 ] && shift
port_arg=
if [ "$cmd" != tool ]; then
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port_arg=${2:?--port needs a value}; shift 2 ;;
      --port=*) port_arg=${1#--port=}; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
fi

kafka_home() {
  # Version: $KAFKA_VERSION or install-kafka.sh's default.
  local v=${KAFKA_VERSION:-$(sed -n 's/^DEFAULT_KAFKA_VERSION=\([^ ]*\).*/\1/p' "$here/install-kafka.sh")}
  echo "$TODO_CACHE/kafka-$v"
}
HOME_K=$(kafka_home)

# The port of a running broker comes from its port file; otherwise --port / KAFKA_PORT / 9092.
configured_port() {
  if [ -n "$port_arg" ]; then echo "$port_arg"
  elif [ -n "${KAFKA_PORT:-}" ]; then echo "$KAFKA_PORT"
  else echo 9092; fi
}
running_port() { if [ -f "$portfile" ]; then cat "$portfile"; else configured_port; fi; }

# java for short-lived CLI tools: quiet logging, fast startup.
tool_java() {
  java -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dtodo.kafka.loglevel="${KAFKA_TOOLS_LOGLEVEL:-WARN}" \
    -Dlog4j2.configurationFile="$HOME_K/config/log4j2.xml" \
    -cp "$HOME_K/libs/*" "$@"
}

# pid of our broker: from the pid file, else any JVM running kafka.Kafka with our server.properties.
broker_pid() {
  local pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && is_our_broker "$pid"; then echo "$pid"; return 0; fi
  fi
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    is_our_broker "$pid" && { echo "$pid"; return 0; }
  done
  return 1
}
is_our_broker() {
  local cl
  cl=$( { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null ) || return 1
  [[ "$cl" == *" kafka.Kafka $props"* ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

client_config() {
  local f="$dir/client.properties"
  [ -f "$f" ] || printf '%s\n' 'request.timeout.ms=5000' 'default.api.timeout.ms=10000' \
    'retries=3' > "$f"
  echo "$f"
}

# -- sasl_ssl -------------------------------------------------------------------------------------
need() { [ -n "${!1:-}" ] || die "KAFKA_SECURITY=sasl_ssl needs $1"; }
secret_file() {  # a random secret kept in $tls/$1, made once
  mkdir -p "$tls"; chmod 700 "$tls"
  [ -s "$tls/$1" ] || ( umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$tls/$1" )
  cat "$tls/$1"
}

# The broker's key pair, its certificate request and the CA's signature, all with keytool: a keystore
# with the chain (broker, CA) and a truststore with the CA. Made again when the CA changes.
make_keystores() {
  local ca=$KAFKA_TLS_CA_DIR pw san="SAN=dns:localhost,ip:127.0.0.1"
  [ -f "$ca/ca.crt" ] && [ -f "$ca/ca.p12" ] || die "KAFKA_TLS_CA_DIR=$ca must hold ca.crt and ca.p12"
  pw=$(secret_file store.password)
  if [ -f "$tls/broker.p12" ] && cmp -s "$ca/ca.crt" "$tls/ca.crt"; then return 0; fi
  log "keytool: a broker certificate for localhost and 127.0.0.1, signed by $ca/ca.crt"
  rm -f "$tls/broker.p12" "$tls/truststore.p12" "$tls/broker.csr" "$tls/broker.crt"
  local store=(-storetype PKCS12 -keystore "$tls/broker.p12" -storepass "$pw")
  keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -sigalg SHA256withECDSA \
    -dname "CN=localhost" -ext "$san" -validity 30 "${store[@]}" >/dev/null 2>&1
  keytool -certreq -alias broker "${store[@]}" -file "$tls/broker.csr"
  keytool -gencert -alias ca -storetype PKCS12 -keystore "$ca/ca.p12" -storepass "$KAFKA_TLS_CA_PASSWORD" \
    -infile "$tls/broker.csr" -outfile "$tls/broker.crt" -ext "$san" -ext "EKU=serverAuth" -validity 30 -rfc
  keytool -importcert -alias ca -file "$ca/ca.crt" "${store[@]}" -noprompt >/dev/null 2>&1
  keytool -importcert -alias broker -file "$tls/broker.crt" "${store[@]}" >/dev/null 2>&1
  keytool -importcert -alias ca -file "$ca/ca.crt" -storetype PKCS12 -keystore "$tls/truststore.p12" \
    -storepass "$pw" -noprompt >/dev/null 2>&1
  cp "$ca/ca.crt" "$tls/ca.crt"
}

sasl_client_config() {  # the CLI tools log in as the broker's own user, over TLS
  local f="$dir/client.properties" admin
  admin=$(secret_file admin.password)
  ( umask 077; printf '%s\n' 'request.timeout.ms=5000' 'default.api.timeout.ms=10000' 'retries=3' \
      'security.protocol=SASL_SSL' 'sasl.mechanism=SCRAM-SHA-512' \
      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin\";" \
      'ssl.truststore.type=PEM' "ssl.truststore.location=$tls/ca.crt" > "$f" )
}

# The clients' SCRAM password, set again on a broker formatted earlier (format time adds it once only).
set_client_password() {
  tool_java org.apache.kafka.tools.ConfigCommand --bootstrap-server "127.0.0.1:$1" \
    --command-config "$(client_config)" --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
    --add-config "SCRAM-SHA-512=[password=$KAFKA_SASL_PASSWORD]" >/dev/null
}

list_topics() {
  tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$1" \
    --command-config "$(client_config)" --list
}

listener_props() {
  local port=$1 cport=$2
  if [ "$SECURITY" = plaintext ]; then
    printf '%s\n' "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
      "advertised.listeners=PLAINTEXT://127.0.0.1:$port" "inter.broker.listener.name=PLAINTEXT" \
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    return
  fi
  local pw admin
  pw=$(secret_file store.password); admin=$(secret_file admin.password)
  printf '%s\n' "listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
    "advertised.listeners=SASL_SSL://127.0.0.1:$port" "inter.broker.listener.name=SASL_SSL" \
    "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL" \
    "sasl.enabled.mechanisms=SCRAM-SHA-512" "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512" \
    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin\";" \
    "ssl.keystore.type=PKCS12" "ssl.keystore.location=$tls/broker.p12" "ssl.keystore.password=$pw" \
    "ssl.truststore.type=PKCS12" "ssl.truststore.location=$tls/truststore.p12" "ssl.truststore.password=$pw" \
    "ssl.client.auth=none"
}

write_props() {
  local port=$1 cport=$2
  : > "$props"; chmod 600 "$props"  # it holds the broker's passwords in sasl_ssl mode
  cat > "$props" <<EOF
# Generated by scripts/stack/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
$(listener_props "$port" "$cport")
log.dirs=$data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
log.segment.bytes=16777216
EOF
}

do_start() {
  local port cport pid
  mkdir -p "$dir"
  if pid=$(broker_pid); then
    echo "$pid" > "$pidfile"
    port=$(running_port)
    log "already running (pid $pid, port $port)"
    [ "$port" = "$(configured_port)" ] || log "warning: requested port $(configured_port) ignored; stop it first to change ports"
    [ "$(cat "$security_file" 2>/dev/null || echo plaintext)" = "$SECURITY" ] \
      || die "running with $(cat "$security_file" 2>/dev/null || echo plaintext), not $SECURITY: stop it first"
    wait_ready "$port" "$pid"
    create_topics "$port"
    return 0
  fi
  port=$(configured_port)
  cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
  port_open "$port" && die "port $port is in use by another process (set KAFKA_PORT or --port)"
  port_open "$cport" && die "controller port $cport is in use (set KAFKA_CONTROLLER_PORT)"

  "$here/install-kafka.sh"
  local formatted=0 was
  if [ -f "$data/meta.properties" ]; then
    formatted=1
    was=$(cat "$security_file" 2>/dev/null || echo plaintext)
    [ "$was" = "$SECURITY" ] || die "$data was formatted for $was, not $SECURITY: kafka.sh clean first"
  fi
  if [ "$SECURITY" = sasl_ssl ]; then
    need KAFKA_TLS_CA_DIR; need KAFKA_TLS_CA_PASSWORD; need KAFKA_SASL_USER; need KAFKA_SASL_PASSWORD
    make_keystores
    sasl_client_config
  fi
  write_props "$port" "$cport"

  if [ "$formatted" = 0 ]; then
    local cid scram=()
    cid=$(tool_java kafka.tools.StorageTool random-uuid)
    log "formatting storage in $data (cluster id $cid, $SECURITY)"
    mkdir -p "$data"
    if [ "$SECURITY" = sasl_ssl ]; then  # SCRAM users live in the metadata log: added before the first start
      scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(secret_file admin.password)]"
             --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]")
    fi
    tool_java kafka.tools.StorageTool format -t "$cid" -c "$props" --ignore-formatted "${scram[@]}" >/dev/null
    echo "$SECURITY" > "$security_file"
  fi

  log "starting kafka on 127.0.0.1:$port (controller $cport), log $logfile"
  echo "$port" > "$portfile"
  # setsid: own session, so a Ctrl-C or a process-group kill of the caller does not hit the broker.
  # shellcheck disable=SC2086
  setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dtodo.kafka.loglevel="${KAFKA_LOGLEVEL:-INFO}" \
    -Dlog4j2.configurationFile="$HOME_K/config/log4j2.xml" \
    -cp "$HOME_K/libs/*" kafka.Kafka "$props" >>"$logfile" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$pidfile"
  wait_ready "$port" "$pid"
  if [ "$SECURITY" = sasl_ssl ] && [ "$formatted" = 1 ]; then set_client_password "$port"; fi
  create_topics "$port"
  log "ready: bootstrap.servers=127.0.0.1:$port (pid $pid, $SECURITY)"
}

# Readiness: the process is alive and a real metadata request (TopicCommand --list) succeeds.
# Sets LISTED to that topic list (reused by create_topics).
wait_ready() {
  local port=$1 pid=$2 deadline=$(( $(date +%s) + ${KAFKA_START_TIMEOUT:-120} ))
  while :; do
    kill -0 "$pid" 2>/dev/null || { tail -n 40 "$logfile" >&2 || true; rm -f "$pidfile"; die "kafka exited during startup"; }
    if port_open "$port" && LISTED=$(list_topics "$port" 2>/dev/null); then return 0; fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 40 "$logfile" >&2 || true; die "kafka not ready after ${KAFKA_START_TIMEOUT:-120}s (pid $pid still running; see $logfile)"; }
    sleep 1
  done
}

create_topics() {
  local port=$1 existing t name parts
  existing=${LISTED-}
  [ -n "${LISTED+x}" ] || existing=$(list_topics "$port")
  for t in $TOPICS; do
    name=${t%%:*}; parts=${t#*:}; [ "$parts" = "$t" ] && parts=1
    if grep -qxF "$name" <<<"$existing"; then continue; fi
    log "creating topic $name ($parts partitions)"
    tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
      --command-config "$(client_config)" --create --if-not-exists \
      --topic "$name" --partitions "$parts" --replication-factor 1 >/dev/null
  done
}

do_stop() {
  local pid deadline
  if ! pid=$(broker_pid); then
    rm -f "$pidfile" "$portfile"
    log "not running"
    return 0
  fi
  log "stopping kafka (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + ${KAFKA_STOP_TIMEOUT:-30} ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after ${KAFKA_STOP_TIMEOUT:-30}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$pidfile" "$portfile"
  log "stopped"
}

do_status() {
  local pid port
  if ! pid=$(broker_pid); then echo "kafka: stopped"; return 3; fi
  port=$(running_port)
  if list_topics "$port" >/dev/null 2>&1; then
    echo "kafka: running (pid $pid, bootstrap 127.0.0.1:$port, data $data)"
  else
    echo "kafka: process $pid is up but not answering on 127.0.0.1:$port"; return 1
  fi
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  topics) list_topics "$(running_port)" ;;
  bootstrap) echo "127.0.0.1:$(running_port)" ;;
  tool) [ $# -ge 1 ] || die "usage: kafka.sh tool CLASS [ARGS...]"
        [ -d "$HOME_K/libs" ] || "$here/install-kafka.sh"
        tool_java "$@" ;;
  clean) do_stop; rm -rf "$data" "$props" "$dir/client.properties" "$tls" "$security_file"
         log "removed $data" ;;
  *) sed -n '2,31p' "$0" >&2; exit 2 ;;
esac
