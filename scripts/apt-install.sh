#!/usr/bin/env bash
# Install Debian packages for an optional capability, where apt-get is usable (root, or
# passwordless sudo); otherwise say what is missing and what it costs, and succeed anyway:
# every capability installed this way has a fallback.
#   scripts/apt-install.sh "<what it is for>" "<what happens without it>" PACKAGE...
set -u
what=$1 without=$2
shift 2
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo -n)
  echo "installing $* (Debian packages) for $what"
  { $SUDO apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "$@" >/dev/null 2>&1; }; } ||
    echo "could not install $*: $without"
else
  echo "$* not installed and apt-get is not usable here (needs root or passwordless sudo): $without"
fi
exit 0
