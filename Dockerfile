# syntax=docker/dockerfile:1
# Tollgate's image: one static binary on distroless (no shell, no libc, user 65532).
#
#   docker build -t tollgate:dev .
#   docker build --target mock -t tollgate-mock:dev .    # the mock provider (tests, demos)
#
# The binary is linked statically against musl for x86_64, so the final stage needs nothing but
# the binary; the program brings its own allocator (mimalloc), so musl's slow malloc never
# sits on the request path.

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS toolchain
ENV CARGO_TARGET=x86_64-unknown-linux-musl \
    CC_x86_64_unknown_linux_musl=musl-gcc
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$CARGO_TARGET"
WORKDIR /src
COPY . .

# The caches keep crates and compiled dependencies between builds; the binary leaves the
# cached target folder in the same step.
FROM toolchain AS build
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$CARGO_TARGET" -p tollgate \
 && install -D "target/$CARGO_TARGET/release/tollgate" /out/tollgate

FROM toolchain AS build-mock
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$CARGO_TARGET" -p tollgate-mock \
 && install -D "target/$CARGO_TARGET/release/tollgate-mock" /out/tollgate-mock

FROM gcr.io/distroless/static-debian12:nonroot AS mock
COPY --from=build-mock /out/tollgate-mock /tollgate-mock
USER 65532:65532
ENTRYPOINT ["/tollgate-mock"]

# The default target, last: `docker build .` makes this one.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /tollgate
USER 65532:65532
ENTRYPOINT ["/tollgate"]
