# The GPU worker: the CPU worker image with start-worker built with `--features cuda`
# (scripts/build-cuda-worker) and the CUDA libraries it links dynamically (libcublas and
# libcublasLt from PyPI's wheels; with a full toolkit, whatever `ldd` lists), copied into
# cuda-lib/. The driver (libcuda.so) is mounted in by the NVIDIA container toolkit of the GPU
# node. Built by hand as docs/deployment.md shows ("The CUDA worker"). WORKER is a local image:
# nothing is pulled.
ARG WORKER
FROM ${WORKER}
COPY cuda-lib/ /usr/local/lib/start-cuda/
COPY bin/ /usr/local/bin/
ENV LD_LIBRARY_PATH=/usr/local/lib/start-cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
