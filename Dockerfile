# kube-actions-runner: build with the Swift toolchain, run on a slim Debian with only libcurl and CA certificates.
# docker build -t ghcr.io/OWNER/kube-actions-runner:0.1.0 .    (multi-arch: docker buildx build --platform linux/amd64,linux/arm64)
ARG SWIFT_VERSION=6.3.1
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product kube-actions-runner \
    && install -D "$(swift build -c release --static-swift-stdlib --show-bin-path)/kube-actions-runner" /out/kube-actions-runner \
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
