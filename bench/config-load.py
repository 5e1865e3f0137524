#!/usr/bin/env python3
"""POST /config latency and memory of one Gatehouse process (issue 4).

Starts `gatehouse start` in a temp prefix with an empty config, POSTs Kong's LMDB benchmark
config (bench/gen_lmdb_config.py N) --rounds times with curl, and prints per round: the
server-side step timings from the `configuration loaded` log line, the client time, the CPU
time the whole process (all threads, user + system) spent from the POST to the sample, and the
process's memory from /proc/PID/status after the load (VmRSS, RssAnon, RssFile) with the peak
so far (VmHWM). RssFile is mostly LMDB's memory map: file-backed pages the kernel may drop,
unlike RssAnon (the heap).

    cargo build --release -p gatehouse
    python3 bench/config-load.py --rounds 5            # target/release/gatehouse, N = 10000
    python3 bench/config-load.py --bin PATH --n 10000 --rounds 8 --settle 3

Python 3 stdlib and curl only.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) // 1024  # MiB
    return out


def cpu(pid):
    """(user + system CPU ms of every thread so far, minor page faults so far), /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK"), int(fields[7])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "gatehouse"))
    ap.add_argument("--n", type=int, default=10000, help="services/routes/consumers (default 10000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between a load and the memory sample")
    ap.add_argument("--workers", type=int, default=2, help="nginx_worker_processes")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="gh-config-load-")
    body = os.path.join(d, "config.json")
    with open(body, "w") as f:
        subprocess.run([sys.executable, os.path.join(HERE, "gen_lmdb_config.py"), str(args.n)],
                       stdout=f, check=True)
    admin, status_port, proxy = free_port(), free_port(), free_port()
    conf = os.path.join(d, "gatehouse.conf")
    with open(conf, "w") as f:
        f.write(f"prefix = {d}/gh\ndatabase = off\nproxy_listen = 127.0.0.1:{proxy}\n"
                f"admin_listen = 127.0.0.1:{admin}\nstatus_listen = 127.0.0.1:{status_port}\n"
                f"nginx_worker_processes = {args.workers}\nlmdb_map_size = 2048m\n")
    log = open(os.path.join(d, "gatehouse.log"), "w+")
    proc = subprocess.Popen([args.bin, "start", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("gatehouse did not come up; log in " + log.name)
        print(f"input {os.path.getsize(body)} bytes (N={args.n}); idle: {status(proc.pid)}")
        print("| round | parse ms | build ms | write ms | total ms | client ms | CPU ms | faults | VmRSS | RssAnon | RssFile | VmHWM |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        seen = 0
        for r in range(1, args.rounds + 1):
            c0, f0 = cpu(proc.pid)
            t0 = time.monotonic()
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                  f"http://127.0.0.1:{admin}/config", "-H", "content-type: application/json",
                                  "--data-binary", "@" + body], capture_output=True, text=True)
            client = 1000 * (time.monotonic() - t0)
            if out.stdout != "201":
                log.seek(0)
                tail = "".join(log.readlines()[-5:])
                alive = "running" if proc.poll() is None else f"exited {proc.returncode}"
                sys.exit(f"POST /config -> {out.stdout!r} (curl exit {out.returncode}, gatehouse "
                         f"{alive}); log tail:\n{tail}")
            time.sleep(args.settle)
            log.seek(0)
            text = re.sub(r"\x1b\[[0-9;]*m", "", log.read())  # tracing's ANSI colours
            lines = [l for l in text.splitlines() if "configuration loaded" in l]
            if len(lines) <= seen:
                sys.exit("no `configuration loaded` log line")
            seen = len(lines)
            t = dict(re.findall(r"(\w+_ms)=(\d+)", lines[-1]))
            m = status(proc.pid)
            c1, f1 = cpu(proc.pid)
            print(f"| {r} | {t.get('parse_ms')} | {t.get('build_ms')} | {t.get('write_ms')} | "
                  f"{t.get('total_ms')} | {client:.0f} | {c1 - c0:.0f} | {f1 - f0} | {m['VmRSS']} | {m['RssAnon']} | "
                  f"{m['RssFile']} | {m['VmHWM']} |")
        print("(memory in MiB, sampled --settle s after each load; VmHWM is the peak so far; CPU ms is "
              "the POST plus the settle time: the replaced snapshot's free and an idle node's ticks; "
              "faults are minor page faults in that time)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
