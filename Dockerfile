# kube-actions-runner: build with the Swift toolchain, run on a slim Debian with only libcurl and CA certificates.
# docker build -t kube-actions-runner:dev .   (multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .)
# Releases are built and pushed by .github/workflows/release.yml.
ARG SWIFT_VERSION=6.3.1
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Everything Package.swift declares must be here, or SwiftPM cannot load the manifest: the product's sources, the
# test target and the benchmark executable. scripts/image-context lays out this stage from .dockerignore and these
# lines, and CI builds the release binary there with the RUN line below (scripts/check-image-libraries).
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY Benchmarks/kar-bench ./Benchmarks/kar-bench
RUN swift build -c release --static-swift-stdlib --product kube-actions-runner
RUN install -D "$(swift build -c release --static-swift-stdlib --show-bin-path)/kube-actions-runner" /out/kube-actions-runner \
    && strip /out/kube-actions-runner

FROM debian:${DEBIAN_RELEASE}-slim
# The packages the binary's shared libraries come from; scripts/check-image-libraries checks this list with ldd.
COPY scripts/runtime-packages.txt /tmp/runtime-packages.txt
# hadolint ignore=DL3008
RUN apt-get update \
    && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/kube-actions-runner /usr/local/bin/kube-actions-runner
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kube-actions-runner"]
