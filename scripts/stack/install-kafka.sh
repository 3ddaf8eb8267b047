#!/usr/bin/env bash
# Fetch an Apache Kafka 4.x broker (KRaft) and its CLI tools from Maven Central and cache them.
#
#   scripts/stack/install-kafka.sh           # fetch (or no-op when cached)
#   KAFKA_VERSION=4.3.1 scripts/stack/install-kafka.sh
#   scripts/stack/install-kafka.sh --force   # fetch again
#
# Result: $TODO_CACHE/kafka-<version>/libs/*.jar (classpath for `java -cp 'libs/*' kafka.Kafka`)
#         $TODO_CACHE/kafka-<version>/config/log4j2.xml
# TODO_CACHE defaults to $HOME/.cache/todo. Maven keeps its own download cache in ~/.m2.
# Installs maven / a Java 17+ runtime with apt-get when missing (root only).
set -euo pipefail

DEFAULT_KAFKA_VERSION=4.4.0   # newest 4.x on Maven Central when this was written

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TODO_CACHE=${TODO_CACHE:-$HOME/.cache/todo}
ver=${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-kafka: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
log() { echo "install-kafka: $*" >&2; }

pom="$here/kafka-pom.xml"
log4j_src="$here/kafka-log4j2.xml"
home="$TODO_CACHE/kafka-$ver"
marker="$home/.installed"
stamp="kafka=$ver pom=$(sha256sum "$pom" | cut -c1-16) log4j2=$(sha256sum "$log4j_src" | cut -c1-16)"

if [ "$FORCE" = 0 ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$stamp" ] \
   && [ -f "$home/libs/kafka_2.13-$ver.jar" ]; then
  log "kafka $ver already installed: $home"
  exit 0
fi

apt_install() {
  if [ "$(id -u)" != 0 ]; then log "missing $*; install it (needs root)"; exit 1; fi
  log "apt-get install $*"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
java_major() { java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  apt_install openjdk-17-jdk-headless
fi
command -v mvn >/dev/null 2>&1 || apt_install maven

mkdir -p "$TODO_CACHE"
exec 9>"$TODO_CACHE/.install-kafka.lock"
flock 9

start=$(date +%s)
log "fetching kafka $ver jars with maven into $home/libs"
# Run maven on a copy of the pom outside the work tree so no target/ appears next to it.
build="$TODO_CACHE/build/kafka-pom"
mkdir -p "$build" "$home"
cp "$pom" "$build/pom.xml"
rm -rf "$home/libs.tmp"
if ! ( cd "$build" && mvn -B --no-transfer-progress -Dstyle.color=never -Dkafka.version="$ver" \
         -Doutput.dir="$home/libs.tmp" process-resources ) > "$build/mvn.log" 2>&1; then
  tail -n 40 "$build/mvn.log" >&2
  log "maven failed (full log: $build/mvn.log)"; exit 1
fi
[ -f "$home/libs.tmp/kafka_2.13-$ver.jar" ] || { log "kafka_2.13-$ver.jar missing after maven"; exit 1; }
rm -rf "$home/libs"
mv "$home/libs.tmp" "$home/libs"
mkdir -p "$home/config"
cp "$log4j_src" "$home/config/log4j2.xml"
printf '%s\n' "$stamp" > "$marker"
log "kafka $ver installed in $(( $(date +%s) - start ))s: $home ($(ls "$home/libs" | wc -l) jars, $(du -sh "$home/libs" | cut -f1))"
