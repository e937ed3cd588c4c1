#!/usr/bin/env bash
# Builds Tollgate profile-guided: the build `make bench` measures and the image ships.
#
#   bench/pgo.sh [--out PATH]
#
# Tollgate is built instrumented (-Cprofile-generate), driven with bench/train.py's load
# against the release mock, and built again with the profile it wrote on exit, merged by
# llvm-profdata (-Cprofile-use). The result is target/pgo/use/release/tollgate, also copied to
# PATH with --out. Each build has its own target folder under target/pgo/, so neither
# invalidates the plain release build. Needs python3; installs oha and llvm-profdata if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
case "${1:-}" in
  "") ;;
  --out) out="${2:?usage: $0 [--out PATH]}" ;;
  *) echo "usage: $0 [--out PATH]" >&2; exit 2 ;;
esac

if ! command -v oha >/dev/null; then
  cargo install oha --locked --version 1.16.0
fi

# llvm-profdata must read the profile format of rustc's own LLVM: rustup's llvm-tools, or
# Debian's package of the same major version.
find_profdata() {
  ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata 2>/dev/null | head -n 1 || true
}
profdata=$(find_profdata)
if [ -z "$profdata" ] && command -v rustup >/dev/null; then
  rustup component add llvm-tools || true
  profdata=$(find_profdata)
fi
if [ -z "$profdata" ]; then
  llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
  if ! command -v "llvm-profdata-$llvm_major" >/dev/null; then
    apt-get update -q && apt-get install -y -q "llvm-$llvm_major"
  fi
  profdata=$(command -v "llvm-profdata-$llvm_major") ||
    { echo "no llvm-profdata for rustc's LLVM $llvm_major (rustup's llvm-tools or llvm-$llvm_major)" >&2; exit 1; }
fi

pgo="$PWD/target/pgo"
rm -rf "$pgo/profiles" "$pgo/build-profiles"
cargo build --release --locked -p tollgate-mock --bin tollgate-mock
# Build scripts and proc macros run instrumented too: their profiles go apart.
RUSTFLAGS="-Cprofile-generate=$pgo/build-profiles" \
  cargo build --release --locked --target-dir "$pgo/generate" -p tollgate --bin tollgate
LLVM_PROFILE_FILE="$pgo/profiles/tollgate-%p-%m.profraw" \
  python3 bench/train.py --tollgate "$pgo/generate/release/tollgate" --mock target/release/tollgate-mock
shopt -s nullglob
profiles=("$pgo"/profiles/*.profraw)
if [ ${#profiles[@]} -eq 0 ]; then
  echo "the instrumented Tollgate wrote no profile to $pgo/profiles (did it exit by itself?)" >&2
  exit 1
fi
"$profdata" merge -o "$pgo/tollgate.profdata" "${profiles[@]}"
RUSTFLAGS="-Cprofile-use=$pgo/tollgate.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
  cargo build --release --locked --target-dir "$pgo/use" -p tollgate --bin tollgate
if [ -n "$out" ]; then
  install -D "$pgo/use/release/tollgate" "$out"
fi
