#!/usr/bin/env bash
# Build promtool (Prometheus's rule checker and rule unit-test runner) from the Go module proxy and
# cache it.
#
#   scripts/stack/install-promtool.sh            # build (or no-op when cached)
#   PROMTOOL_VERSION=v0.316.0 scripts/stack/install-promtool.sh
#   scripts/stack/install-promtool.sh --force    # rebuild even when cached
#
# Result: $TODO_CACHE/bin/promtool-<module version> and the symlink $TODO_CACHE/bin/promtool.
# TODO_CACHE defaults to $HOME/.cache/todo. How: scripts/stack/go-tool.sh. tests/deploy/test_alerts.py
# runs `promtool check rules` and `promtool test rules` with it.
set -euo pipefail

# Prometheus 3.x releases carry v0.3xx.y tags of the Go module: v0.316.0 is Prometheus 3.16.0.
DEFAULT_PROMTOOL_VERSION=v0.316.0

TOOL=promtool
MODULE=github.com/prometheus/prometheus
VERSION=${PROMTOOL_VERSION:-$DEFAULT_PROMTOOL_VERSION}
PACKAGE=$MODULE/cmd/promtool
# netgo as in Prometheus's .promu.yml (builtinassets only matters to the server's web UI); remove_all_sd
# (Prometheus's README, "Service discovery plugins") leaves out the cloud service discoveries, which
# `promtool check rules` and `test rules` never use and which make up most of a cold build.
TAGS=netgo,remove_all_sd
USAGE_LINES=2,11

# The version stamp of Prometheus's release build (.promu.yml), from the module's VERSION file.
go_tool_ldflags() {
  echo "-X github.com/prometheus/common/version.Version=$(cat "$1/VERSION")" \
       "-X github.com/prometheus/common/version.Revision=$VERSION"  # the proxy gives no commit: the tag stands in
}
go_tool_version() { "$1" --version 2>&1 | head -n1; }

# shellcheck source=go-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
go_tool_install "$@"
