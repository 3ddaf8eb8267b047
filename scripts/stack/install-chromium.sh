#!/usr/bin/env bash
# Debian's Chromium and its WebDriver for the browser tests (tests/browser), installed like PostgreSQL:
# with apt-get, only when missing. The tests drive /usr/bin/chromium with Playwright and never let a
# tool download a browser of its own (there is no such download here, and it would be unpinned).
#
#   scripts/stack/install-chromium.sh          # no-op when /usr/bin/chromium runs
#   scripts/stack/install-chromium.sh --check  # exit 0 when installed, 3 when not (installs nothing)
set -euo pipefail

log() { echo "install-chromium.sh: $*" >&2; }

installed() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && /usr/bin/chromium --version >/dev/null 2>&1; }

if installed; then exit 0; fi
if [ "${1:-}" = --check ]; then exit 3; fi
[ "$(id -u)" = 0 ] || { log "Chromium not installed: apt-get install chromium chromium-driver (as root)"; exit 1; }

log "installing Chromium (apt-get install chromium chromium-driver)"
# Another clone may be installing packages at the same moment: wait for dpkg's lock instead of failing.
apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  chromium chromium-driver fonts-dejavu-core >/dev/null
installed || { log "chromium still missing after apt-get install"; exit 1; }
log "$(/usr/bin/chromium --version)"
