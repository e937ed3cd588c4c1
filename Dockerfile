# syntax=docker/dockerfile:1
# Tollgate's image: one binary on distroless's cc image (glibc, libgcc; no shell), user 65532.
#
#   docker build -t tollgate:dev .
#   docker build --build-arg PGO=0 -t tollgate:dev .    # half the build time, a slower binary
#   docker build --target mock -t tollgate-mock:dev .    # the mock provider (tests, demos)
#
# The binary is built profile-guided (bench/pgo.sh: an instrumented build, trained on loopback
# against the mock with bench/train.py's load, then the optimised build), and linked against
# glibc rather than statically against musl: musl's memcpy, which the request path calls for
# every body and header it moves, took 15% of the gateway's CPU time at saturation against
# glibc's 4% (perf, same load), giving back most of what the profile gains (README,
# Benchmarks). The program brings its own allocator (mimalloc) either way. Debian 12's glibc
# in the build stage and in distroless's runtime stage, so the binary runs on the glibc it was
# linked against.

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup component add llvm-tools
WORKDIR /src

# The load generator of the profile's training, in a layer of its own that source changes keep.
FROM toolchain AS trainer
RUN cargo install oha --locked --version 1.16.0

# The caches keep crates and compiled dependencies between builds; the binary leaves the
# cached target folder in the same step.
FROM trainer AS build
ARG PGO=1
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
      ./bench/pgo.sh --out /out/tollgate; \
    else \
      cargo build --release --locked -p tollgate \
      && install -D target/release/tollgate /out/tollgate; \
    fi

FROM toolchain AS build-mock
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tollgate-mock \
 && install -D target/release/tollgate-mock /out/tollgate-mock

FROM gcr.io/distroless/cc-debian12:nonroot AS mock
COPY --from=build-mock /out/tollgate-mock /tollgate-mock
USER 65532:65532
ENTRYPOINT ["/tollgate-mock"]

# The default target, last: `docker build .` makes this one.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tollgate /tollgate
USER 65532:65532
ENTRYPOINT ["/tollgate"]
