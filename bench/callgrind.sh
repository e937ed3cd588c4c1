#!/usr/bin/env bash
# `make bench-instructions`: builds the release binaries (with line tables, for callgrind_annotate)
# and counts Tollgate's instructions per request under callgrind (bench/callgrind.py; arguments
# are passed on, e.g. `--whole 500 --stream 100` for a quicker run).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  apt-get update -q && apt-get install -y -q valgrind
fi
cargo build --release -p tollgate -p tollgate-mock
python3 bench/callgrind.py "$@"
