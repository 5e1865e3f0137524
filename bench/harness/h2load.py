"""Run h2load (nghttp2-client) over TLS with ALPN h2; returns the same dict as wrk.run.

h2load prints no percentiles, so each run writes its per-request log (`--log-file`: start µs,
status, µs to the end of the response) and the percentiles are computed from it.
"""
import os
import re
import subprocess

from . import procs

STREAMS = 10  # concurrent streams per connection (-m): h2's multiplexing, as a browser would


def _percentile(sorted_values, q):
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, int(round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def run(run_dir, port, path, headers, conns, duration, cpu, h2load="h2load"):
    log = os.path.join(run_dir, "h2load-requests.log")
    argv = procs.pin_prefix(cpu) + [h2load, "-t1", f"-c{conns}", f"-m{STREAMS}",
                                    f"-D{duration}", f"--log-file={log}"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(f"https://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    text = out.stdout
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    took = re.search(r"finished in ([\d.]+)(m?s)", text)
    if out.returncode != 0 or not (done and codes and took):
        raise RuntimeError(f"h2load failed ({out.returncode}): {out.stderr.strip()} {text[-500:]}")
    secs = float(took.group(1)) / (1000 if took.group(2) == "ms" else 1)
    latencies = []
    try:
        with open(log) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    latencies.append(int(parts[2]))
        os.remove(log)
    except OSError:
        pass
    latencies.sort()
    requests = int(done.group(3))
    failed, errored, timeout = (int(done.group(i)) for i in (4, 5, 6))
    return {
        "requests": requests, "duration_us": int(secs * 1e6),
        "rps": requests / secs if secs else 0.0,
        "connect": 0, "read": errored, "write": failed, "timeout": timeout,
        "socket_errors": failed + errored + timeout,
        "non_2xx_3xx": int(codes.group(3)) + int(codes.group(4)),
        "p50": _percentile(latencies, 50), "p90": _percentile(latencies, 90),
        "p99": _percentile(latencies, 99), "p999": _percentile(latencies, 99.9),
        "p9999": _percentile(latencies, 99.99),
        "mean": sum(latencies) / len(latencies) if latencies else 0.0,
        "max": latencies[-1] if latencies else 0,
        "argv": " ".join(argv),
    }
