#!/usr/bin/env bash
# Builds Tollgate profile-guided, into target/pgo/use/release/tollgate (bench/run.sh --pgo runs
# it first, after installing nginx and oha and building the release mock). Tollgate is built
# instrumented (-Cprofile-generate), driven with bench/train.py's load, and built again with
# the profile it wrote on exit, merged by llvm-profdata (-Cprofile-use). Each build has its own
# target folder under target/pgo/, so neither invalidates the plain release build.
set -euo pipefail
cd "$(dirname "$0")/.."

# llvm-profdata must read the profile format of rustc's own LLVM: rustup's llvm-tools, or
# Debian's package of the same major version.
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata 2>/dev/null | head -n 1 || true)
if [ -z "$profdata" ]; then
  if ! command -v "llvm-profdata-$llvm_major" >/dev/null; then
    apt-get update -q && apt-get install -y -q "llvm-$llvm_major"
  fi
  profdata=$(command -v "llvm-profdata-$llvm_major")
fi

pgo="$PWD/target/pgo"
rm -rf "$pgo/profiles" "$pgo/build-profiles"
# Build scripts and proc macros run instrumented too: their profiles go apart.
RUSTFLAGS="-Cprofile-generate=$pgo/build-profiles" \
  cargo build --release --target-dir "$pgo/generate" -p tollgate --bin tollgate
LLVM_PROFILE_FILE="$pgo/profiles/tollgate-%p-%m.profraw" \
  python3 bench/train.py --tollgate "$pgo/generate/release/tollgate"
"$profdata" merge -o "$pgo/tollgate.profdata" "$pgo"/profiles/*.profraw
RUSTFLAGS="-Cprofile-use=$pgo/tollgate.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
  cargo build --release --target-dir "$pgo/use" -p tollgate --bin tollgate
