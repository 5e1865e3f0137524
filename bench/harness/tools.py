"""Side tools: apt dependencies, building a git ref for --compare, perf + inferno flamegraphs."""
import os
import shutil
import subprocess
import sys

from . import procs

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bench/bisect runs a copy of the harness from a temp dir and points it at the repo
REPO = os.environ.get("GATEHOUSE_REPO") or os.path.dirname(BENCH_DIR)
OUT = os.path.join(BENCH_DIR, "out")


def install_deps(flamegraph=False):
    # openssl makes the TLS scenarios' certificate, h2load drives the h2 scenario.
    want = {"nginx": "nginx", "wrk": "wrk", "haproxy": "haproxy", "openssl": "openssl",
            "h2load": "nghttp2-client"}
    if flamegraph:
        want["perf"] = "linux-perf"
    missing = [pkg for exe, pkg in want.items() if not procs.which(exe)]
    if not missing:
        print("deps: nginx, wrk, haproxy, openssl, h2load already installed")
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"deps: apt-get install {' '.join(missing)}")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env)


def git(*args, cwd=None):
    r = subprocess.run(["git", *args], cwd=cwd or REPO, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def build_ref(ref, work_dir):
    """Build `gatehouse` at a git ref in a temporary worktree with its own target dir.
    Returns the path of a copy of the binary (bench/out/bin/gatehouse-<sha>)."""
    sha = git("rev-parse", "--verify", ref + "^{commit}")
    dest = os.path.join(OUT, "bin", f"gatehouse-{sha[:12]}")
    if os.access(dest, os.X_OK):
        print(f"compare: reusing {dest} ({ref} = {sha[:12]})")
        return dest, sha
    wt = os.path.join(work_dir, f"worktree-{sha[:12]}")
    print(f"compare: building {ref} ({sha[:12]}) in {wt}")
    git("worktree", "add", "--detach", wt, sha)
    try:
        target_dir = os.path.join(OUT, "compare-target")  # its own target dir, reused across refs
        env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
        r = subprocess.run(["cargo", "build", "--release", "-p", "gatehouse"], cwd=wt, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"cargo build failed at {ref} ({sha[:12]})")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(target_dir, "release", "gatehouse"), dest)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=REPO,
                       capture_output=True)
    return dest, sha


# ---------------------------------------------------------------- flamegraph

def perf_check():
    """None if `perf record` works here, else a clear reason."""
    perf = procs.which("perf")
    if not perf:
        return "perf is not installed (apt-get install linux-perf, or --install-deps --flamegraph)"
    r = subprocess.run([perf, "record", "-q", "-o", "/dev/null", "--", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        try:
            paranoid = open("/proc/sys/kernel/perf_event_paranoid").read().strip()
        except OSError:
            paranoid = "?"
        return (f"perf is not permitted on this machine (perf_event_paranoid={paranoid}; "
                f"run as root or set kernel.perf_event_paranoid<=1): {r.stderr.strip()[-300:]}")
    return None


def inferno_bins(install=True):
    """(collapse, flamegraph) executables: PATH, then bench/out/tools/bin, else cargo install."""
    local = os.path.join(OUT, "tools", "bin")
    for d in (None, local):
        c = shutil.which("inferno-collapse-perf", path=d)
        f = shutil.which("inferno-flamegraph", path=d)
        if c and f:
            return c, f
    if not install or not shutil.which("cargo"):
        return None
    print("flamegraph: inferno not found; cargo install inferno --root bench/out/tools")
    r = subprocess.run(["cargo", "install", "--locked", "inferno", "--root",
                        os.path.join(OUT, "tools")])
    if r.returncode != 0:
        return None
    return (os.path.join(local, "inferno-collapse-perf"), os.path.join(local, "inferno-flamegraph"))


class PerfRecorder:
    """Callable given to Run.one: attaches `perf record` to the proxy PID for the measured run."""

    def __init__(self, out_dir, name, cpu=None, freq=499, callgraph="dwarf,16384"):
        self.data = os.path.join(out_dir, f"{name}.perf.data")
        self.cpu, self.freq, self.callgraph = cpu, freq, callgraph

    def __call__(self, pid, duration):
        # perf itself runs on the load CPU, away from the proxy it samples
        argv = procs.pin_prefix(self.cpu) + [procs.which("perf"), "record", "-q", "-F", str(self.freq), "--call-graph",
                self.callgraph, "-p", ",".join(map(str, procs.process_tree(pid))),
                "-o", self.data, "--", "sleep", str(duration)]
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def flamegraph_svg(perf_data, svg, title):
    bins = inferno_bins()
    if not bins:
        return "inferno is not available and could not be installed: no SVG (perf data kept)"
    collapse, flame = bins
    script = subprocess.run([procs.which("perf"), "script", "-i", perf_data],
                            capture_output=True)
    if script.returncode != 0 or not script.stdout:
        return f"perf script failed: {script.stderr.decode()[-300:]}"
    folded = subprocess.run([collapse], input=script.stdout, capture_output=True, check=True).stdout
    with open(svg, "wb") as f:
        subprocess.run([flame, "--title", title], input=folded, stdout=f, check=True)
    return None


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, " \
           f"Python {sys.version.split()[0]}"


def versions():
    out = []
    for exe, flag in (("nginx", "-v"), ("haproxy", "-v"), ("wrk", "-v")):
        path = procs.which(exe)
        if path:
            r = subprocess.run([path, flag], capture_output=True, text=True)
            text = (r.stdout + r.stderr).strip().splitlines()
            out.append(text[0] if text else exe)
    return "; ".join(out)
