"""Aggregation, Markdown tables, compare verdicts and the optional matplotlib chart."""
import os

from . import stats

BASELINE = "nginx"


def _fmt_k(x):
    return "–" if x is None else (f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}")


def _fmt_ms(us):
    return "–" if us is None else f"{us / 1000:.2f} ms"


def _fmt_mib(kb):
    return "–" if not kb else f"{kb / 1024:.1f} MiB"


def _fmt(x, spec):
    return "–" if x is None else format(x, spec)


def aggregate(results):
    """{(scenario, conns): {target: summary}} with ratios to nginx taken within each round."""
    groups = {}
    for r in results:
        groups.setdefault((r["scenario"], r["conns"]), {}).setdefault(r["target"], []).append(r)
    out = {}
    for key, by_target in groups.items():
        base = {r["round"]: r["rps"] for r in by_target.get(BASELINE, []) if r["valid"]}
        out[key] = {}
        for target, runs in by_target.items():
            ok = [r for r in runs if r["valid"]]
            ratios = [r["rps"] / base[r["round"]] for r in ok if base.get(r["round"])]
            out[key][target] = {
                "runs": len(runs), "valid": len(ok),
                "rps": stats.median([r["rps"] for r in ok]),
                "rps_all": [r["rps"] for r in ok],
                "rps_by_round": {r["round"]: r["rps"] for r in ok},
                "ratio": stats.median(ratios), "ratios": ratios,
                "cpu_us": stats.median([r["cpu_us_per_req"] for r in ok]),
                "cpu_all": [r["cpu_us_per_req"] for r in ok],
                "cpu_util": stats.median([r.get("proxy_cpu_util") for r in ok]),
                **{p: stats.median([r[p] for r in ok]) for p in ("p50", "p90", "p99", "p999")},
                "rss_kb": max((r["rss_kb"] for r in ok), default=None),
                "errors": sorted({" ".join(e.split())[:600] for r in runs for e in r["errors"]}),
            }
    return out


def markdown_tables(agg, order):
    lines = []
    for (scenario, conns) in sorted(agg, key=lambda k: (k[0], k[1])):
        rows = agg[(scenario, conns)]
        lines += [f"**{scenario}**, c={conns}", "",
                  "| target | RPS | × nginx | CPU µs/req | CPU % | p50 | p90 | p99 | p99.9 | peak RSS "
                  "| valid |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for t in sorted(rows, key=lambda t: order.index(t) if t in order else 99):
            s = rows[t]
            lines.append(
                f"| {t} | {_fmt_k(s['rps'])} | {_fmt(s['ratio'], '.2f')} | {_fmt(s['cpu_us'], '.1f')} | "
                f"{_fmt(s['cpu_util'] and 100 * s['cpu_util'], '.0f')} | "
                f"{_fmt_ms(s['p50'])} | {_fmt_ms(s['p90'])} | {_fmt_ms(s['p99'])} | "
                f"{_fmt_ms(s['p999'])} | {_fmt_mib(s['rss_kb'])} | "
                f"{s['valid']}/{s['runs']} |")
        lines.append("")
        for t, s in rows.items():
            for e in s["errors"]:
                lines.append(f"- INVALID {t}: {e}")
        if any(s["errors"] for s in rows.values()):
            lines.append("")
    return lines


def compare(agg, current, ref, alpha, threshold):
    """Mann-Whitney U on per-round RPS (and CPU/req) plus a bootstrap CI of the within-round ratio.
    Returns (lines, regression_found)."""
    lines, regression = [], False
    for key in sorted(agg):
        rows = agg[key]
        if current not in rows or ref not in rows:
            continue
        a, b = rows[current], rows[ref]
        lines.append(f"**compare {key[0]}, c={key[1]}: {current} vs {ref}**")
        lines.append("")
        if not a["rps_all"] or not b["rps_all"]:
            lines += ["no valid runs on one side; nothing to decide", ""]
            continue
        _, p, rbc, method = stats.mann_whitney_u(a["rps_all"], b["rps_all"])
        # within-round ratios current/ref (the two ran back to back in the same round)
        ratios = [a["rps_by_round"][r] / b["rps_by_round"][r] for r in a["rps_by_round"]
                  if b["rps_by_round"].get(r)]
        med = stats.median(ratios)
        lo, hi = stats.bootstrap_ci(ratios)
        _, pc, rbc_c, _ = stats.mann_whitney_u(a["cpu_all"], b["cpu_all"])
        effect = med - 1 if med is not None else 0.0
        significant = p < alpha and abs(effect) >= threshold and lo is not None and \
            (hi < 1 or lo > 1)
        verdict = ("no significant difference" if not significant else
                   ("REGRESSION (current slower)" if effect < 0 else "improvement (current faster)"))
        regression |= significant and effect < 0
        lines += [
            f"- RPS: current {_fmt_k(a['rps'])} vs ref {_fmt_k(b['rps'])}; ratio median "
            f"{med:.3f} (95% bootstrap CI {lo:.3f}–{hi:.3f}), effect {effect * 100:+.1f} %",
            f"- Mann-Whitney U ({method}, n={len(a['rps_all'])}+{len(b['rps_all'])}): "
            f"p = {p:.4f}, rank-biserial r = {rbc:+.2f}",
            f"- CPU µs/req: current {_fmt(a['cpu_us'], '.1f')} vs ref {_fmt(b['cpu_us'], '.1f')} "
            f"(p = {pc:.4f}, r = {rbc_c:+.2f})",
            f"- verdict (alpha {alpha}, min effect {threshold * 100:.0f} %): **{verdict}**", ""]
    return lines, regression


def chart(agg, path_for_scenario, order):
    """PNG per scenario: RPS and p99 per target, one bar group per connection count.
    Returns the written paths, or a reason string when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install -r bench/requirements.txt): no chart"
    written = []
    for scenario in sorted({k[0] for k in agg}):
        keys = sorted(k for k in agg if k[0] == scenario)
        tnames = sorted({t for k in keys for t in agg[k]},
                        key=lambda t: order.index(t) if t in order else 99)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        width = 0.8 / max(1, len(keys))
        for i, k in enumerate(keys):
            xs = [j + i * width for j in range(len(tnames))]
            rps = [(agg[k].get(t) or {}).get("rps") or 0 for t in tnames]
            p99 = [((agg[k].get(t) or {}).get("p99") or 0) / 1000 for t in tnames]
            axes[0].bar(xs, rps, width, label=f"c={k[1]}")
            axes[1].bar(xs, p99, width, label=f"c={k[1]}")
        for ax, title in ((axes[0], "requests/s (median)"), (axes[1], "p99 latency, ms (median)")):
            ax.set_xticks([j + width * (len(keys) - 1) / 2 for j in range(len(tnames))])
            ax.set_xticklabels(tnames, rotation=20)
            ax.set_title(title)
            ax.legend()
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(f"Gatehouse bench: {scenario}")
        fig.tight_layout()
        path = path_for_scenario(scenario)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def standing(agg, scenarios, skipped, conns_list):
    """One table: every scenario against its goal from the issues (gatehouse only)."""
    def value(goal, name, conns):
        g = agg.get((name, conns), {}).get("gatehouse")
        if not g or g["rps"] is None:
            return None
        if goal["metric"] == "rps_x_nginx":
            return g["ratio"]
        b = agg.get((goal.get("vs"), conns), {}).get("gatehouse")
        if not b or not b["rps"]:
            return None
        if goal["metric"] == "rps_x_scenario":
            # nginx runs in both scenarios and serves as the control for machine load:
            # (gatehouse/nginx here) / (gatehouse/nginx there); raw RPS only without nginx
            if g["ratio"] and b["ratio"]:
                return g["ratio"] / b["ratio"]
            return g["rps"] / b["rps"]
        if goal["metric"] == "p99_x_scenario":
            return g["p99"] / b["p99"] if b["p99"] else None
        return None

    lines = ["**Standing against the issues' targets** (gatehouse). \"× scenario\" compares two "
             "scenarios of the same run through nginx as the control: (gatehouse ÷ nginx here) "
             "÷ (gatehouse ÷ nginx there)", "",
             "| scenario | target | " + " | ".join(f"c={c}" for c in conns_list) + " | status |",
             "|---|---|" + "---:|" * len(conns_list) + "---|"]
    for sc in scenarios:
        goal = sc.goal or {"text": "–", "metric": "rps_x_nginx"}
        vals = [value(goal, sc.name, c) for c in conns_list]
        skip = next((s for s in skipped if s.startswith(f"SKIP {sc.name}:")), None)
        if skip:
            status = f"skipped: needs issue {sc.needs_issue}"
        elif all(v is None for v in vals):
            status = "not measured"
        elif "min" in goal or "max" in goal:
            ok = all(v is not None and (v >= goal["min"] if "min" in goal else v <= goal["max"])
                     for v in vals)
            status = "**met**" if ok else "**not met**"
        else:
            status = "measured"
        unit = "× p99" if goal["metric"].startswith("p99") else "×"
        lines.append(f"| {sc.name} | {goal['text']} | " +
                     " | ".join("–" if v is None else f"{v:.2f}{unit}" for v in vals) +
                     f" | {status} |")
    return lines + [""]
