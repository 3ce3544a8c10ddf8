#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the portal's browser test
# (examples/portal/tests/browser.rs), unless both are already present. Idempotent; needs root
# (or sudo) only when something is missing. Meant to be sourced or run from .ci/run.
set -euo pipefail

chromium_bin=/usr/bin/chromium
chromedriver_bin=/usr/bin/chromedriver

if [ -x "$chromium_bin" ] && [ -x "$chromedriver_bin" ]; then
  echo "chromium.sh: $chromium_bin and $chromedriver_bin are installed; nothing to do"
else
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo_cmd=(sudo)
    else
      echo "chromium.sh: not root and no sudo: cannot install chromium" >&2
      exit 1
    fi
  fi
  echo "chromium.sh: $chromium_bin or $chromedriver_bin is missing: installing chromium and chromium-driver"
  echo "chromium.sh: apt-get update"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} apt-get update
  echo "chromium.sh: apt-get install -y --no-install-recommends chromium chromium-driver"
  ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    chromium chromium-driver
fi

for bin in "$chromium_bin" "$chromedriver_bin"; do
  if [ ! -x "$bin" ]; then
    echo "chromium.sh: $bin is still missing after the installation" >&2
    exit 1
  fi
done
echo "chromium.sh: $("$chromium_bin" --version 2>/dev/null || echo "chromium (version unknown)")"
echo "chromium.sh: $("$chromedriver_bin" --version 2>/dev/null || echo "chromedriver (version unknown)")"
