#!/usr/bin/env bash
# Install the headless Chromium the HTML-report test opens (tests/quality/test_report_html.py).
# Idempotent: does nothing when /usr/bin/chromium exists. Debian/Ubuntu (apt) only.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  echo "setup_browser: chromium present ($(chromium --version 2>/dev/null | head -1))"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
echo "setup_browser: installed $(chromium --version 2>/dev/null | head -1)"
