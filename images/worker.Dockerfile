# start-worker (and startctl) on the sandbox image: the worker then carries the same Python and
# packages that sandboxed code gets, so the process sandbox (START_SANDBOX=process) works in the
# container too. SANDBOX and BASE are local images: nothing is pulled.
ARG SANDBOX
ARG BASE
FROM ${BASE} AS base
FROM ${SANDBOX}
COPY --from=base /usr/bin/tini-static /usr/bin/tini
COPY bin/ /usr/local/bin/
# The sandbox image itself, for a Docker daemon that lacks it (a DinD sidecar starts empty).
COPY start-sandbox.tar.gz /opt/start/start-sandbox.tar.gz
ENV START_STORE_ROOT=/data \
    START_MODEL=/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    START_SANDBOX_IMAGE_ARCHIVE=/opt/start/start-sandbox.tar.gz
WORKDIR /data
USER 10001:10001
EXPOSE 9091
# tini is PID 1: SIGTERM reaches the worker (it drains), and processes orphaned by sandboxed
# code (process backend) are reaped.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/start-worker"]
CMD []
