"""Interleaved rounds: per round every target once (order rotated), restarted and warmed each time."""
import threading
import time

from . import h2load, procs, targets, wrk

PROXY_CPU, LOAD_CPU = 0, 1


class Run:
    def __init__(self, args, run_dir, upstream_port, upstream_pid, log):
        self.args, self.run_dir, self.upstream_port, self.log = args, run_dir, upstream_port, log
        self.upstream_pid = upstream_pid
        self.proxy_cpu = None if args.unpinned else PROXY_CPU
        self.load_cpu = None if args.unpinned else LOAD_CPU

    def ctx(self, scenario):
        return {"scenario": scenario, "upstream_port": self.upstream_port,
                "upstream_url": f"http://127.0.0.1:{self.upstream_port}", "run_dir": self.run_dir}

    def preflight(self, target, scenario):
        """Start once with the scenario's config. Returns None or the reason it failed."""
        ctx = self.ctx(scenario)
        proc, err = target.start(self.run_dir, ctx, self.proxy_cpu)
        if err:
            return err
        try:
            if scenario.probe and isinstance(target, targets.Gatehouse):
                ctx.update(admin_port=target.admin_port, status_port=target.status_port,
                           proxy_port=target.proxy_port)
                return scenario.probe(ctx)
            return None
        finally:
            proc.stop()

    @staticmethod
    def load_fn(scenario):
        """The load generator of a scenario: wrk over http or https, or h2load (always TLS)."""
        if scenario.load == "h2load":
            if not procs.which("h2load"):
                raise RuntimeError("h2load not installed (bench/run --install-deps)")
            return h2load.run
        if scenario.tls:
            return lambda *args: wrk.run(*args, scheme="https")
        return wrk.run

    def one(self, target, scenario, conns, rnd, perf=None):
        """One measured run. Returns a result dict (always; 'valid' False with 'errors' on failure)."""
        a = self.args
        res = {"scenario": scenario.name, "target": target.name, "conns": conns, "round": rnd,
               "valid": False, "errors": []}
        ctx = self.ctx(scenario)
        proc, err = target.start(self.run_dir, ctx, self.proxy_cpu)
        if err:
            res["errors"].append(f"start: {err}")
            return res
        ctx.update(proxy_port=target.proxy_port, admin_port=target.admin_port,
                   status_port=target.status_port, target=target.name)
        try:
            if scenario.before_load:
                res["errors"].extend(scenario.before_load(ctx) or [])
            load = self.load_fn(scenario)
            if a.warmup > 0:
                load(self.run_dir, target.proxy_port, scenario.path, scenario.headers, conns,
                     a.warmup, self.load_cpu)
            up0 = targets.upstream_requests(self.upstream_port)
            cpu0 = procs.tree_cpu_seconds(proc.pid)
            ucpu0 = procs.tree_cpu_seconds(self.upstream_pid)
            stop, hook_errors, th = threading.Event(), [], None
            if scenario.during_load:
                th = threading.Thread(
                    target=lambda: hook_errors.extend(scenario.during_load(ctx, stop) or []))
                th.start()
            rec = perf(proc.pid, a.duration) if perf else None
            try:
                w = load(self.run_dir, target.proxy_port, scenario.path, scenario.headers,
                         conns, a.duration, self.load_cpu)
            finally:
                stop.set()
                if th:
                    th.join(30)
                if rec:
                    rec.wait(60)
            cpu1 = procs.tree_cpu_seconds(proc.pid)
            ucpu1 = procs.tree_cpu_seconds(self.upstream_pid)
            rss = procs.tree_peak_rss_kb(proc.pid)
            up1 = targets.upstream_requests(self.upstream_port)
            alive = proc.alive()
        except Exception as e:  # noqa: BLE001 - a failed run is reported, not fatal
            res["errors"].append(f"{type(e).__name__}: {e}")
            return res
        finally:
            proc.stop()
        res.update(rps=w["rps"], requests=w["requests"], p50=w["p50"], p90=w["p90"], p99=w["p99"],
                   p999=w["p999"], p9999=w["p9999"], mean=w["mean"], max=w["max"], rss_kb=rss,
                   cpu_us_per_req=(cpu1 - cpu0) * 1e6 / w["requests"] if w["requests"] else None,
                   proxy_cpu_util=(cpu1 - cpu0) / (w["duration_us"] / 1e6),
                   upstream_cpu_util=(ucpu1 - ucpu0) / (w["duration_us"] / 1e6),
                   socket_errors=w["socket_errors"], non_2xx_3xx=w["non_2xx_3xx"],
                   upstream_requests=(up1 - up0) if None not in (up0, up1) else None,
                   wrk=w["argv"], notes=ctx.get("notes", [])[-3:])
        errs = res["errors"]
        if w["requests"] == 0:
            errs.append("no requests completed")
        if w["socket_errors"]:
            errs.append(f"wrk socket errors: connect {w['connect']}, read {w['read']}, "
                        f"write {w['write']}, timeout {w['timeout']}")
        if w["non_2xx_3xx"]:
            errs.append(f"{w['non_2xx_3xx']} non-2xx/3xx responses")
        if res["upstream_requests"] is None:
            errs.append("could not read the upstream request counter")
        elif res["upstream_requests"] < w["requests"]:
            errs.append(f"upstream saw {res['upstream_requests']} requests < {w['requests']} "
                        "answered by the proxy")
        if not alive:
            errs.append(f"{target.name} died during the run")
        errs.extend(hook_errors)
        res["valid"] = not errs
        return res

    def scenario(self, scenario, tlist, say):
        """All rounds of one scenario. Returns the list of result dicts."""
        results = []
        for conns in self.args.connections:
            for rnd in range(self.args.rounds):
                k = rnd % len(tlist)
                order = tlist[k:] + tlist[:k]
                for t in order:
                    t0 = time.monotonic()
                    r = self.one(t, scenario, conns, rnd)
                    results.append(r)
                    if r["valid"]:
                        say(f"  c={conns} round {rnd + 1}/{self.args.rounds} {t.name:14s} "
                            f"{r['rps']:9.0f} rps  p99 {r['p99'] / 1000:7.2f} ms  "
                            f"{r['cpu_us_per_req']:6.1f} µs/req  ({time.monotonic() - t0:.0f}s)")
                    else:
                        say(f"  c={conns} round {rnd + 1}/{self.args.rounds} {t.name:14s} "
                            f"INVALID: {'; '.join(r['errors'])}")
        return results
