#!/usr/bin/env bash
# Installs what the test suite needs: the Python packages, exactly as requirements.lock pins them (`make lock`
# regenerates it from requirements-dev.txt), and Debian's chromium (for the browser tests).
# Playwright drives /usr/bin/chromium; `playwright install` cannot download browsers on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -r requirements.lock
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version
