#!/usr/bin/env bash
# `make bench`: installs the reference proxy and the load generator if missing, builds the
# release mock and Tollgate as the image ships it (profile-guided: bench/pgo.sh), and runs
# bench/harness.py (all traffic on loopback). With --plain first (`make bench-plain`), the plain
# release build is measured instead: half the build time, for comparing code changes. Other
# arguments go to bench/harness.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null; then
  apt-get update -q && apt-get install -y -q nginx-light
fi
if ! command -v oha >/dev/null; then
  cargo install oha --locked --version 1.16.0
fi
cargo build --release --workspace --bins
if [ "${1:-}" = "--plain" ]; then
  shift
else
  ./bench/pgo.sh
  set -- --tollgate target/pgo/use/release/tollgate "$@"
fi
python3 bench/harness.py "$@"
