# start-coordinator (and startctl, for submit Jobs) on the small Debian base that images/build
# makes with debootstrap. BASE is a local image: nothing is pulled.
ARG BASE
FROM ${BASE}
COPY bin/ /usr/local/bin/
# The dataset store is mounted here; relative output and problem paths resolve against it.
ENV START_STORE_ROOT=/data
WORKDIR /data
USER 10001:10001
EXPOSE 50051 9090
# tini is PID 1: it forwards SIGTERM (the coordinator shuts down gracefully) and reaps.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/start-coordinator"]
