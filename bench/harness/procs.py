"""Process management by PID, readiness polling and /proc accounting."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin_prefix(cpu):
    """`taskset -c CPU` prefix, or nothing when cpu is None (unpinned mode)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


class Proc:
    """A child process started and stopped by PID, stdout/stderr to a log file."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.log = open(log_path, "wb")  # one log per start: tail() shows only this run
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def stop(self, timeout=12.0):  # gatehouse drains up to 10 s on SIGTERM
        if self.popen.poll() is None:
            # SIGTERM the PID (the session leader); nginx/haproxy/gatehouse stop their own workers.
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                # Kill the process group we created for this PID only (start_new_session).
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout)
        # Reap leftover workers of this process group, if any (never anything else).
        try:
            os.killpg(self.pid, 0)
            time.sleep(0.2)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()


def _read_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    rest = data[data.rindex(")") + 2:].split()
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12)
    return int(rest[1]), int(rest[11]) + int(rest[12])


def process_tree(root):
    """PIDs of root and all its descendants (from /proc ppid links)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid, _ = _read_stat(int(entry))
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root):
    """utime+stime (seconds) summed over the live process tree of root."""
    total = 0
    for pid in process_tree(root):
        try:
            total += _read_stat(pid)[1]
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK_TCK


def tree_peak_rss_kb(root):
    """Largest VmHWM (peak RSS, kB) of any process in root's tree (the worker, for nginx)."""
    best = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def http_get(port, path="/", headers=None, timeout=1.0, method="GET", body=None, tls=False):
    """(status, body) or (None, error string). With `tls`, over HTTPS (certificate not checked)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    finally:
        conn.close()


def wait_ready(proc, checks, timeout=20.0):
    """Poll until every (port, path, headers[, tls]) answers 2xx. Returns None or an error."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            return f"{proc.name} exited with code {proc.popen.returncode}"
        ok = True
        for port, path, headers, *tls in checks:
            status, body = http_get(port, path, headers, timeout=0.5, tls=bool(tls and tls[0]))
            if status is None or not 200 <= status < 300:
                ok, last = False, f"GET :{port}{path} -> {status} {body[:200]!r}"
                break
        if ok:
            return None
        time.sleep(0.1)
    return f"{proc.name} not ready after {timeout:.0f}s ({last})"


def which(name):
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
