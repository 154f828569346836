#!/usr/bin/env bash
# The project's test command (README and .ci/run call exactly this).
# On a fresh machine it installs what the tests need: Debian's Chromium for the browser
# tests and the pinned Python packages; then it runs ruff and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# A Chinese font too, so the zh-TW screenshots and picture labels show Chinese, not boxes.
if ! command -v chromium >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh-tw 2>/dev/null)" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  echo "installing Debian's chromium and a Chinese font (fonts-noto-cjk) for the browser tests"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi

python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
python -m ruff check .
python -m pytest "$@"
