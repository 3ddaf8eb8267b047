#!/usr/bin/env bash
# Build Jaeger v2 (the trace backend: an OpenTelemetry Collector distribution taking OTLP, with
# in-memory storage and the query API/UI) from the Go module proxy and cache it.
#
#   scripts/stack/install-jaeger.sh            # build (or no-op when cached)
#   JAEGER_VERSION=v1.76.0 scripts/stack/install-jaeger.sh
#   scripts/stack/install-jaeger.sh --force    # rebuild even when cached
#
# Result: $TODO_CACHE/bin/jaeger-<module version> and the symlink $TODO_CACHE/bin/jaeger.
# TODO_CACHE defaults to $HOME/.cache/todo. How: scripts/stack/go-tool.sh (a wrapper module, since
# Jaeger's go.mod carries a replace directive). scripts/stack/jaeger.sh runs it.
set -euo pipefail

# Jaeger v2 releases carry v1.x tags of the Go module: v1.76.0 is Jaeger v2.13.0 (its CHANGELOG.md).
DEFAULT_JAEGER_VERSION=v1.76.0

TOOL=jaeger
MODULE=github.com/jaegertracing/jaeger
VERSION=${JAEGER_VERSION:-$DEFAULT_JAEGER_VERSION}
PACKAGE=$MODULE/cmd/jaeger
TAGS=
USAGE_LINES=2,11

# The v2 release name, as Jaeger's own build stamps it (scripts/makefiles/BuildInfo.mk); the proxy
# gives no commit, so commitSHA stays empty.
go_tool_ldflags() {
  local v2
  v2=$(sed -n "s|^$VERSION / \(v2\.[0-9][0-9.]*\) .*|\1|p" "$1/CHANGELOG.md" | head -n1)
  echo "-X $MODULE/internal/version.latestVersion=${v2:-$VERSION}"
}
go_tool_version() { "$1" version 2>/dev/null; }

# shellcheck source=go-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
go_tool_install "$@"
