# ibsync container image: the same Debian 12 packages and cmake commands as CI
# (scripts/install-deps.sh), then a slim runtime stage with only the shared
# libraries ibsync links and CA certificates, running as a non-root user.
#   docker build -t ibsync .
#   docker run --rm -v "$PWD:/src:ro" ibsync validate /src/examples/linux-golden-ami
# Without Docker, scripts/measure-image.sh builds the runtime stage's
# filesystem the same way and measures it (docs/container-image.md).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build
COPY . .
RUN cmake -S . -B build -G Ninja -DIBS_WERROR=ON -DIBS_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
    && cmake --build build \
    && strip build/cmd/ibsync

FROM debian:12-slim
COPY --from=build /src/scripts/install-deps.sh /usr/local/share/ibsync/install-deps.sh
# --no-log-init: no sparse lastlog/faillog entries for the high uid.
RUN /usr/local/share/ibsync/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --no-log-init --home-dir /var/lib/ibsync --create-home \
       --shell /usr/sbin/nologin ibsync
COPY --from=build /src/build/cmd/ibsync /usr/local/bin/ibsync
USER 10001:10001
WORKDIR /var/lib/ibsync
ENTRYPOINT ["ibsync"]
CMD ["--help"]
