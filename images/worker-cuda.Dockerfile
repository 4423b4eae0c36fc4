# The GPU worker: the CPU worker image with start-worker built with `--features cuda` and the
# CUDA runtime libraries it links (libcudart, libcublas, libcublasLt), copied from the build
# host's toolkit. The driver (libcuda.so) is mounted in by the NVIDIA container toolkit of the
# GPU node. Built by hand as docs/deployment.md shows ("The CUDA worker"): this repository's
# CI machine has no CUDA toolkit. WORKER is a local image: nothing is pulled.
ARG WORKER
FROM ${WORKER}
COPY cuda-lib/ /usr/local/lib/start-cuda/
COPY bin/ /usr/local/bin/
ENV LD_LIBRARY_PATH=/usr/local/lib/start-cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
