"""bench/run: argument parsing and the whole run (see bench/README.md)."""
import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile

from . import procs, report, runner, scenario as scen, targets, tools

ALL_TARGETS = ["gatehouse", "gatehouse-ref", "nginx", "nginx-ka64", "haproxy"]
DEFAULT_TARGETS = ["gatehouse", "nginx", "haproxy"]
EXIT_OK, EXIT_REGRESSION, EXIT_INVALID = 0, 1, 2


def parse(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=(
        "Benchmark Gatehouse against nginx and haproxy proxying the same upstream nginx, "
        "interleaved rounds, proxy pinned to CPU0, wrk + upstream on CPU1."))
    p.add_argument("--scenario", action="append",
                   help=f"scenario name (repeatable; default: all of {', '.join(scen.list_names())})")
    p.add_argument("--targets",
                   help="comma list from gatehouse,nginx,nginx-ka64,haproxy (default "
                        "gatehouse,nginx,haproxy; with --compare: gatehouse,nginx). nginx "
                        "(upstream keepalive 1024) is the ratio baseline")
    p.add_argument("--gatehouse", default=os.path.join(tools.REPO, "target/release/gatehouse"),
                   help="gatehouse binary (default target/release/gatehouse)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 6 with --compare)")
    p.add_argument("--duration", type=int, help="seconds per measured wrk run (default 10)")
    p.add_argument("--warmup", type=int, help="seconds of warmup per run (default 2)")
    p.add_argument("--connections", help="comma list (default 50,256)")
    p.add_argument("--workers", type=int, default=1, help="proxy workers/threads (default 1)")
    p.add_argument("--unpinned", action="store_true", help="no taskset pinning")
    p.add_argument("--quick", action="store_true",
                   help="smoke mode: 1 round, 2 s, c=50, 1 s warmup; asserts validity only")
    p.add_argument("--compare", metavar="REF",
                   help="build gatehouse at git REF (worktree) and run it interleaved with the "
                        "current binary; Mann-Whitney U + bootstrap CI decide; exit 1 on regression")
    p.add_argument("--compare-bin", metavar="PATH", help="like --compare with a prebuilt binary")
    p.add_argument("--alpha", type=float, default=0.05, help="compare: significance level")
    p.add_argument("--threshold", type=float, default=0.02,
                   help="compare: smallest relative RPS change that counts (default 0.02 = 2%%)")
    p.add_argument("--flamegraph", action="store_true",
                   help="after the rounds, one extra gatehouse run under perf record -> SVG")
    p.add_argument("--install-deps", action="store_true", help="apt-get install nginx wrk haproxy openssl nghttp2-client")
    p.add_argument("--record", action="store_true", help="append to RESULTS.md even with --quick")
    p.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    p.add_argument("--keep", action="store_true", help="keep the temp run dir (configs, logs)")
    p.add_argument("--list", action="store_true", help="list scenarios and exit")
    p.add_argument("--from-json", metavar="FILE",
                   help="re-render the report of a saved bench/out/<ts>/results.json and exit")
    # hidden: stand-in for gatehouse while the binary does not exist ("nginx" = a second nginx)
    p.add_argument("--gatehouse-cmd", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    # explicit options win over --quick, which wins over the defaults
    quick = dict(rounds=1, duration=2, warmup=1, connections="50")
    full = dict(rounds=6 if (a.compare or a.compare_bin) else 3,  # 6+6: exact U test reaches p<0.01
                duration=10, warmup=2, connections="50,256")
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.connections = [int(c) for c in str(a.connections).split(",")]
    return a


def make_targets(a, names, ref_bin):
    nginx, haproxy = procs.which("nginx"), procs.which("haproxy")
    out = []
    for n in names:
        if n == "gatehouse":
            if a.gatehouse_cmd == "nginx":
                out.append(targets.NginxProxy("gatehouse", nginx, 1024, a.workers, status_server=True))
            else:
                out.append(targets.Gatehouse("gatehouse", a.gatehouse, a.workers))
        elif n == "gatehouse-ref":
            out.append(targets.Gatehouse("gatehouse-ref", ref_bin, a.workers))
        elif n == "nginx":
            out.append(targets.NginxProxy("nginx", nginx, 1024, a.workers))
        elif n == "nginx-ka64":
            out.append(targets.NginxProxy("nginx-ka64", nginx, 64, a.workers))
        elif n == "haproxy":
            out.append(targets.HAProxy(haproxy, a.workers))
        else:
            raise SystemExit(f"unknown target {n!r}; known: {', '.join(ALL_TARGETS)}")
    return out


def raise_nofile():
    """Children (wrk with c=256, nginx, haproxy) inherit our soft RLIMIT_NOFILE: raise it."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse(argv)
    if a.list:
        for n in scen.list_names():
            s = scen.load(n)
            print(f"{n:26s} {s.description}" + (f"  [needs issue {s.needs_issue}]"
                                                 if s.needs_issue else ""))
        return EXIT_OK
    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        agg = report.aggregate(saved["results"])
        names = sorted({r["target"] for r in saved["results"]},
                       key=lambda t: ALL_TARGETS.index(t) if t in ALL_TARGETS else 99)
        conns = sorted({r["conns"] for r in saved["results"]})
        scs = [scen.load(n) for n in scen.list_names()
               if any(k[0] == n for k in agg) or any(f"SKIP {n}:" in x for x in saved["skipped"])]
        print(f"(from {a.from_json}: {saved['command']}, commit {saved['commit']})\n")
        print("\n".join(report.standing(agg, scs, saved["skipped"], conns)
                        + report.markdown_tables(agg, names)))
        return EXIT_OK
    if a.install_deps:
        tools.install_deps(a.flamegraph)
    for exe in ("wrk", "nginx"):
        if not procs.which(exe):
            print(f"error: {exe} not found (bench/run --install-deps)", file=sys.stderr)
            return EXIT_INVALID
    raise_nofile()
    a.loadavg = os.getloadavg()[0]  # recorded: a busy machine (a compile) makes numbers noisy
    if not a.unpinned and (os.cpu_count() or 1) < 2:
        print("note: fewer than 2 CPUs; running unpinned")
        a.unpinned = True

    default = "gatehouse,nginx" if (a.compare or a.compare_bin) else ",".join(DEFAULT_TARGETS)
    names = [n.strip() for n in (a.targets or default).split(",") if n.strip()]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(tools.OUT, stamp)
    os.makedirs(out_dir, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="gatehouse-bench-")
    os.chmod(run_dir, 0o755)
    def say(msg=""):
        print(msg, flush=True)
        say.lines.append(msg)
    say.lines = []

    ref_bin = ref_sha = None
    try:
        if a.compare:
            ref_bin, ref_sha = tools.build_ref(a.compare, run_dir)
        elif a.compare_bin:
            ref_bin, ref_sha = os.path.abspath(a.compare_bin), a.compare_bin
        if ref_bin:
            names = ["gatehouse", "gatehouse-ref"] + [n for n in names
                                                     if n not in ("gatehouse", "gatehouse-ref")]
    except Exception as e:  # noqa: BLE001
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    tlist = make_targets(a, names, ref_bin)
    scenarios = [scen.load(n) for n in (a.scenario or scen.list_names())]

    say(f"bench: {len(scenarios)} scenario(s), targets {', '.join(names)}, {a.rounds} round(s) x "
        f"{a.duration}s (+{a.warmup}s warmup), c={a.connections}, "
        f"{'unpinned' if a.unpinned else 'proxy on CPU0, wrk + upstream on CPU1'}")
    say(f"run dir {run_dir}; results {out_dir}")
    results, skipped, problems, flames = [], [], [], []
    up = None
    try:
        up, up_port = targets.start_upstream(run_dir, None if a.unpinned else runner.LOAD_CPU,
                                             procs.which("nginx"))
        run = runner.Run(a, run_dir, up_port, up.pid, say)
        for t in list(tlist):  # a missing gatehouse is an error, a missing haproxy is not
            why = t.available()
            if why:
                tlist.remove(t)
                if t.name.startswith("gatehouse"):
                    problems.append(f"{t.name}: {why}")
                    say(f"ERROR {t.name}: {why}")
                else:
                    say(f"skip {t.name}: {why}")
        for sc in scenarios:
            say(f"\n== scenario {sc.name}: {sc.description}")
            active = []
            for t in tlist:
                if sc.targets is not None and t.name not in sc.targets:
                    continue
                if isinstance(t, targets.Gatehouse) or t.name == "gatehouse":
                    err = run.preflight(t, sc)
                    if err:
                        first = err.strip().splitlines()
                        detail = " | ".join(first[-6:])
                        if sc.needs_issue:
                            line = (f"SKIP {sc.name}: {t.name} cannot run the scenario yet "
                                    f"(needs issue {sc.needs_issue}): {detail[:400]}")
                            skipped.append(line)
                            say("  " + line)
                            active = None
                            break
                        problems.append(f"{sc.name}: {t.name} failed to start: {detail[:400]}")
                        say(f"  ERROR {t.name} failed to start: {err.strip()[-800:]}")
                        continue
                active.append(t)
            if not active:
                continue
            results += run.scenario(sc, active, say)
            if a.flamegraph:
                flames.append(flamegraph(a, run, sc, active, out_dir, say))
    except KeyboardInterrupt:
        problems.append("interrupted")
    except Exception as e:  # noqa: BLE001
        problems.append(f"harness error: {type(e).__name__}: {e}")
        say(f"ERROR: {type(e).__name__}: {e}")
    finally:
        if up:
            up.stop()
        if a.keep:
            say(f"kept run dir {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    return finish(a, argv, names, results, skipped, problems, flames, out_dir, ref_sha, say,
                  scenarios)


def flamegraph(a, run, sc, active, out_dir, say):
    gh = next((t for t in active if t.name == "gatehouse"), None)
    if gh is None:
        return f"flamegraph {sc.name}: no gatehouse target"
    why = tools.perf_check()
    if why:
        say(f"  flamegraph: {why}")
        return f"flamegraph {sc.name}: {why}"
    rec = tools.PerfRecorder(out_dir, f"{sc.name}-gatehouse", cpu=run.load_cpu)
    conns = a.connections[0]
    r = run.one(gh, sc, conns, -1, perf=rec)
    svg = os.path.join(out_dir, f"flamegraph-{sc.name}-c{conns}.svg")
    err = tools.flamegraph_svg(rec.data, svg, f"gatehouse {sc.name} c={conns}") \
        if os.path.exists(rec.data) else "perf recorded nothing"
    msg = f"flamegraph {sc.name}: {err or svg}" + ("" if r["valid"] else
                                                   f" (run invalid: {'; '.join(r['errors'])})")
    say("  " + msg)
    return msg


def finish(a, argv, names, results, skipped, problems, flames, out_dir, ref_sha, say,
           scenarios):
    agg = report.aggregate(results)
    invalid = [r for r in results if not r["valid"]]
    commit = "?"
    try:
        commit = tools.git("rev-parse", "--short=12", "HEAD")
        if tools.git("status", "--porcelain", "--untracked-files=no"):
            commit += " (dirty)"
    except Exception:  # noqa: BLE001
        pass
    cmd = "bench/run " + " ".join(shlex.quote(x) for x in argv)
    md = [f"## {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} — commit {commit}", "",
          f"- command: `{cmd}`",
          f"- machine: {tools.machine()}; load average at start {a.loadavg:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}",
          f"- tools: {tools.versions()}",
          f"- mode: {'unpinned' if a.unpinned else 'pinned (proxy CPU0; wrk + upstream CPU1)'}, "
          f"{a.rounds} round(s) x {a.duration}s + {a.warmup}s warmup, {a.workers} proxy worker(s); "
          "RPS/latency/CPU: medians over rounds; × nginx: within-round ratio, median", ""]
    md += report.standing(agg, scenarios, skipped, a.connections)
    md += report.markdown_tables(agg, names)
    if ref_sha:
        lines, regression = report.compare(agg, "gatehouse", "gatehouse-ref", a.alpha, a.threshold)
        md = md[:3] + [f"- compare: gatehouse-ref = {ref_sha}"] + md[3:] + lines
    else:
        regression = False
    md += [f"- {s}" for s in skipped]
    md += [f"- ERROR {p}" for p in problems]
    md += [f"- {f}" for f in flames]
    md.append("")
    text = "\n".join(md)
    say("\n" + text)

    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"command": cmd, "commit": commit, "results": results, "skipped": skipped,
                   "problems": problems}, f, indent=1)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "run.log"), "w") as f:
        f.write("\n".join(say.lines) + "\n")
    record = (a.record or not a.quick) and not a.no_record and results
    chart_dir = tools.BENCH_DIR if record else out_dir
    charts = report.chart(agg, lambda s: os.path.join(chart_dir, f"results-{s}.png"), names)
    chart_note = charts if isinstance(charts, str) else ", ".join(
        os.path.relpath(c, tools.BENCH_DIR) for c in charts)
    say(f"chart: {chart_note}")
    if record:
        with open(os.path.join(tools.BENCH_DIR, "RESULTS.md"), "a") as f:
            f.write("\n" + text + (f"- chart: {chart_note}\n" if chart_note else ""))
        say("appended to bench/RESULTS.md")

    if invalid or problems or not results:
        say(f"RESULT: INVALID ({len(invalid)} invalid run(s), {len(problems)} problem(s)"
            f"{', no runs' if not results else ''})")
        return EXIT_INVALID
    if regression:
        say("RESULT: REGRESSION (significant, see compare above)")
        return EXIT_REGRESSION
    say(f"RESULT: OK ({len(results)} valid run(s), {len(skipped)} scenario(s) skipped)")
    return EXIT_OK
