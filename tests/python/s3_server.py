"""An S3-compatible server on loopback for the tests and the README's S3 demo: moto's
ThreadedMotoServer (PyPI `moto[server]`), which implements conditional writes (If-None-Match,
If-Match) the way AWS S3 does. Creates the named buckets, prints `ready <port>`, and serves
until its standard input closes (so it dies with the process that started it) or, with
--foreground, until it is killed.

    python3 tests/python/s3_server.py PORT BUCKET [BUCKET...] [--foreground]
"""

import logging
import sys
import time

import boto3
from moto.server import ThreadedMotoServer


def main():
    # werkzeug logs every request to stderr; the tests want only failures.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    foreground = "--foreground" in sys.argv
    port, buckets = int(args[0]), args[1:]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    print(f"ready {port}", flush=True)
    try:
        if foreground:
            while True:
                time.sleep(3600)
        else:
            sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
