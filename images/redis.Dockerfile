# Redis from Debian's package on the small base, for clusters (and tests) without a registry.
ARG BASE
FROM ${BASE}
USER 0
RUN mkdir -p /data && chown 999:999 /data
USER 999:999
WORKDIR /data
EXPOSE 6379
VOLUME /data
# Append-only with fsync on every write: an acknowledged lease or report survives a crash.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/redis-server"]
CMD ["--appendonly", "yes", "--appendfsync", "always", "--dir", "/data", "--save", "", "--protected-mode", "no", "--bind", "0.0.0.0"]
