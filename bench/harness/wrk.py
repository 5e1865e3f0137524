"""Run wrk with a Lua done() hook that prints the summary and p50/p90/p99/p99.9 as JSON."""
import json
import os
import subprocess

from . import procs

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"p9999":%d,' ..
    '"mean":%.1f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency:percentile(99.99),
    latency.mean, latency.max))
end
"""


def script_path(run_dir):
    path = os.path.join(run_dir, "done.lua")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(DONE_LUA)
    return path


def run(run_dir, port, path, headers, conns, duration, cpu, wrk="wrk", timeout_s=5,
        scheme="http"):
    """Returns a dict: requests, rps, errors (socket + status), latency percentiles in µs."""
    argv = procs.pin_prefix(cpu) + [wrk, "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
                                    f"--timeout={timeout_s}s", "-s", script_path(run_dir)]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(f"{scheme}://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()} {out.stdout[-500:]}")
    r = json.loads(line[len("WRKJSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["non_2xx_3xx"] = r["status"]  # wrk counts responses with status > 399
    r["argv"] = " ".join(argv)
    return r
