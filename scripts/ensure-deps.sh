#!/usr/bin/env bash
# Installs the npm dependencies when they are missing (a fresh clone), quietly otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/tsx ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[ts-cnode] installing npm dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi
