#!/usr/bin/env python3
"""Cold-start cost of the binary: the time from process start to its first request to the Lambda
runtime API (GET .../invocation/next), with the settings of a deployment that names its audit
bucket's region (so no network call is made before serving). A stand-in runtime API listens on a
free loopback port and answers nothing: the measurement ends at the request line.

    bench_startup.py RUNS BINARY
Prints one JSON line: median and best milliseconds, and the binary's size in bytes.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def once(binary):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "DELIVERY_STREAM": "bench",
        "AUDIT_BUCKET": "bench-audit",
        "AUDIT_BUCKET_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    started = time.perf_counter()
    child = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.settimeout(10)
    conn, _ = server.accept()
    conn.settimeout(10)
    data = b""
    while b"\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    elapsed = time.perf_counter() - started
    child.kill()
    child.wait()
    conn.close()
    server.close()
    if b"/runtime/invocation/next" not in data:
        sys.exit(f"unexpected first request: {data[:200]!r}")
    return elapsed * 1000


def main():
    runs, binary = int(sys.argv[1]), sys.argv[2]
    times = [once(binary) for _ in range(runs)]
    print(json.dumps({"median_ms": round(statistics.median(times), 2),
                      "best_ms": round(min(times), 2),
                      "binary_bytes": os.path.getsize(binary)}))


if __name__ == "__main__":
    main()
