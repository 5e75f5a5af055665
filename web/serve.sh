#!/usr/bin/env bash
# Serves the static page web/ on http://127.0.0.1:${PORT:-8000}/ (run web/build.sh first).
set -euo pipefail
cd "$(dirname "$0")"
[ -f pkg/bfrope.js ] || { echo "serve.sh: web/pkg is missing; run bash web/build.sh first" >&2; exit 1; }
echo "serving $(pwd) on http://127.0.0.1:${PORT:-8000}/"
exec python3 -m http.server "${PORT:-8000}" --bind 127.0.0.1
