//! Prometheus text exposition (format 0.0.4), streamed on the caller's thread.
//!
//! Why hand-written: a scrape of 100k+ series must not build a model of every sample
//! (tikv `prometheus::gather`) nor hold locks proxy threads need. We copy the route block list
//! under a short lock, then walk it once per family, summing each block's cells of that family
//! over the threads in one pass and appending pre-escaped label bytes into a 64 KiB buffer that is
//! flushed to the writer. Histogram lines, most of the output, copy a per-block head
//! (`name_bucket{labels`) and a per-family `,le="…"} ` tail, so a line is two copies and one
//! number (`itoa`). `examples/render_100k.rs` measures a render of the `metrics-scrape` shape.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::codes;
use crate::node::{self as nd, HealthState, RELOAD_BUCKETS};
use crate::registry::{lock, Registry};
use crate::shard::{self as sh, Block, Source};
use crate::{KONG_LATENCY_BUCKETS, UPSTREAM_LATENCY_BUCKETS};

const FLUSH_AT: usize = 64 * 1024;

struct Out<'w, W: Write> {
    buf: Vec<u8>,
    w: &'w mut W,
}

impl<W: Write> Out<'_, W> {
    #[inline]
    fn s(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    #[inline]
    fn u(&mut self, v: u64) -> &mut Self {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    #[inline]
    fn b(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    #[inline]
    fn end(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn family(&mut self, name: &str, help: &str, kind: &str) -> io::Result<()> {
        self.s("# HELP ").s(name).s(" ").s(help).end()?;
        self.s("# TYPE ").s(name).s(" ").s(kind).end()
    }

    fn finish(mut self) -> io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()
    }
}

/// Per-consumer rows of one block, merged over threads: consumer id → (label, codes, in, out).
type ConsumerRows = HashMap<u32, (Arc<str>, Vec<(u16, Source, u64)>, u64, u64)>;

fn merge_extras(b: &Block) -> (Vec<(u16, Source, u64)>, ConsumerRows) {
    let mut codes: Vec<(u16, Source, u64)> = Vec::new();
    let mut cons: ConsumerRows = HashMap::new();
    for m in b.extras.iter() {
        let x = lock(m);
        for &(c, s, n) in &x.codes {
            add(&mut codes, c, s, n);
        }
        for (id, cc) in &x.consumers {
            let e = cons
                .entry(*id)
                .or_insert_with(|| (cc.label.clone(), Vec::new(), 0, 0));
            for &(c, s, n) in &cc.codes {
                add(&mut e.1, c, s, n);
            }
            e.2 += cc.ingress;
            e.3 += cc.egress;
        }
    }
    (codes, cons)
}

fn add(v: &mut Vec<(u16, Source, u64)>, c: u16, s: Source, n: u64) {
    match v.iter_mut().find(|e| e.0 == c && e.1 == s) {
        Some(e) => e.2 += n,
        None => v.push((c, s, n)),
    }
}

fn has_extras(b: &Block) -> bool {
    b.extras.iter().any(|m| {
        let x = lock(m);
        !x.codes.is_empty() || !x.consumers.is_empty()
    })
}

impl Registry {
    /// Writes the whole exposition into `w` (Content-Type `text/plain; version=0.0.4`).
    /// Call from the admin/status thread; proxy threads are never blocked by it.
    pub fn render<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let blocks = self.blocks();
        let mut o = Out {
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            w,
        };
        let node = self.opts.node_id.as_str();
        let sub = self.opts.subsystem.as_str();

        // Which blocks have rare codes or consumer rows (checked once per scrape).
        let extras: Vec<bool> = blocks.iter().map(|b| has_extras(b)).collect();

        o.family(
            "kong_bandwidth_bytes",
            "Total bandwidth (ingress/egress) throughput in bytes",
            "counter",
        )?;
        for (b, &x) in blocks.iter().zip(&extras) {
            for (dir, off) in [("ingress", sh::OFF_BW), ("egress", sh::OFF_BW + 1)] {
                let v = b.sum(off);
                if v > 0 {
                    o.s("kong_bandwidth_bytes{")
                        .s(&b.svc_route)
                        .s(",direction=\"")
                        .s(dir);
                    o.s("\",")
                        .s(&b.workspace)
                        .s(",consumer=\"\"} ")
                        .u(v)
                        .end()?;
                }
            }
            if x {
                for (label, _, i, e) in merge_extras(b).1.values() {
                    for (dir, v) in [("ingress", *i), ("egress", *e)] {
                        if v > 0 {
                            o.s("kong_bandwidth_bytes{")
                                .s(&b.svc_route)
                                .s(",direction=\"")
                                .s(dir);
                            o.s("\",")
                                .s(&b.workspace)
                                .s(",")
                                .s(label)
                                .s("} ")
                                .u(v)
                                .end()?;
                        }
                    }
                }
            }
        }

        o.family(
            "kong_datastore_reachable",
            "Datastore reachable from Kong, 0 is unreachable",
            "gauge",
        )?;
        o.s("kong_datastore_reachable ")
            .u(self.datastore_reachable.load(Relaxed))
            .end()?;

        o.family(
            "kong_http_requests_total",
            "HTTP status codes per consumer/service/route in Kong",
            "counter",
        )?;
        let mut counts = [0u64; 2 * codes::N];
        for (b, &x) in blocks.iter().zip(&extras) {
            b.sums(sh::OFF_CODES, &mut counts);
            for (src, counts) in [Source::Service, Source::Kong]
                .into_iter()
                .zip(counts.chunks_exact(codes::N))
            {
                for (code, &v) in codes::CODES.iter().zip(counts) {
                    if v > 0 {
                        status_line(&mut o, b, *code, src, "consumer=\"\"", v)?;
                    }
                }
            }
            if x {
                let (rare, cons) = merge_extras(b);
                for (c, s, v) in rare {
                    status_line(&mut o, b, c, s, "consumer=\"\"", v)?;
                }
                for (label, codes, _, _) in cons.values() {
                    for &(c, s, v) in codes {
                        status_line(&mut o, b, c, s, label, v)?;
                    }
                }
            }
        }

        histogram(
            &mut o,
            &blocks,
            "kong_kong_latency_ms",
            "Latency added by Kong and enabled plugins for each service/route in Kong",
            sh::OFF_KONG,
            &KONG_LATENCY_BUCKETS,
        )?;

        o.family(
            "kong_nginx_connections_total",
            "Number of connections by subsystem",
            "gauge",
        )?;
        let opened = self.node.sum(nd::CONN_OPENED);
        let active = opened.saturating_sub(self.node.sum(nd::CONN_CLOSED));
        let requests = self.node.sum(nd::REQUESTS);
        let writing = self
            .node
            .sum(nd::REQ_STARTED)
            .saturating_sub(self.node.sum(nd::REQ_FINISHED));
        for (state, v) in [
            ("accepted", opened),
            ("active", active),
            ("handled", opened),
            ("reading", 0),
            ("total", requests),
            ("waiting", active.saturating_sub(writing)),
            ("writing", writing),
        ] {
            o.s("kong_nginx_connections_total{node_id=\"")
                .s(node)
                .s("\",subsystem=\"")
                .s(sub);
            o.s("\",state=\"").s(state).s("\"} ").u(v).end()?;
        }

        o.family(
            "kong_nginx_requests_total",
            "Number of requests total",
            "gauge",
        )?;
        o.s("kong_nginx_requests_total{node_id=\"")
            .s(node)
            .s("\",subsystem=\"")
            .s(sub);
        o.s("\"} ").u(requests).end()?;

        o.family("kong_node_info", "Kong Node metadata information", "gauge")?;
        o.s("kong_node_info{node_id=\"")
            .s(node)
            .s("\",version=\"")
            .s(&self.opts.version);
        o.s("\"} 1").end()?;

        histogram(
            &mut o,
            &blocks,
            "kong_request_latency_ms",
            "Total latency incurred during requests for each service/route in Kong",
            sh::OFF_REQ,
            &UPSTREAM_LATENCY_BUCKETS,
        )?;
        histogram(
            &mut o,
            &blocks,
            "kong_upstream_latency_ms",
            "Latency added by upstream response for each service/route in Kong",
            sh::OFF_UP,
            &UPSTREAM_LATENCY_BUCKETS,
        )?;

        if let Some(rows) = lock(&self.health.rows).as_ref() {
            o.family(
                "kong_upstream_target_health",
                "Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.",
                "gauge",
            )?;
            for r in rows {
                let prefix = format!(
                    "{},{},{}",
                    crate::labels::pair("upstream", &r.upstream),
                    crate::labels::pair("target", &r.target),
                    crate::labels::pair("address", &r.address)
                );
                for st in HealthState::ALL {
                    o.s("kong_upstream_target_health{")
                        .s(&prefix)
                        .s(",state=\"")
                        .s(st.label());
                    o.s("\",subsystem=\"")
                        .s(sub)
                        .s("\"} ")
                        .u((st == r.state) as u64)
                        .end()?;
                }
            }
        }

        self.render_process(&mut o)?;
        o.finish()
    }

    fn render_process<W: Write>(&self, o: &mut Out<'_, W>) -> io::Result<()> {
        let p = &self.process;
        let (node, sub) = (self.opts.node_id.as_str(), self.opts.subsystem.as_str());
        o.family(
            "gatehouse_config_reloads_total",
            "Configuration loads by result",
            "counter",
        )?;
        o.s("gatehouse_config_reloads_total{result=\"success\"} ")
            .u(p.reloads_ok.load(Relaxed))
            .end()?;
        o.s("gatehouse_config_reloads_total{result=\"failure\"} ")
            .u(p.reloads_failed.load(Relaxed))
            .end()?;

        o.family(
            "gatehouse_config_reload_duration_seconds",
            "Time to parse, store and swap in a configuration",
            "histogram",
        )?;
        let mut cum = 0u64;
        for (i, le) in RELOAD_BUCKETS.iter().enumerate() {
            cum += p.reload_buckets.get(i).map_or(0, |c| c.load(Relaxed));
            o.s("gatehouse_config_reload_duration_seconds_bucket{le=\"")
                .s(&le.to_string());
            o.s("\"} ").u(cum).end()?;
        }
        cum += p.reload_buckets.last().map_or(0, |c| c.load(Relaxed));
        o.s("gatehouse_config_reload_duration_seconds_bucket{le=\"+Inf\"} ")
            .u(cum)
            .end()?;
        let sum = p.reload_sum_us.load(Relaxed) as f64 / 1e6;
        o.s("gatehouse_config_reload_duration_seconds_sum ")
            .s(&sum.to_string())
            .end()?;
        o.s("gatehouse_config_reload_duration_seconds_count ")
            .u(cum)
            .end()?;

        o.family(
            "gatehouse_router_cache_hits_total",
            "Router match cache hits",
            "counter",
        )?;
        o.s("gatehouse_router_cache_hits_total ")
            .u(self.node.sum(nd::CACHE_HITS))
            .end()?;
        o.family(
            "gatehouse_router_cache_misses_total",
            "Router match cache misses",
            "counter",
        )?;
        o.s("gatehouse_router_cache_misses_total ")
            .u(self.node.sum(nd::CACHE_MISSES))
            .end()?;

        o.family(
            "gatehouse_lmdb_size_bytes",
            "Size of the LMDB data file",
            "gauge",
        )?;
        o.s("gatehouse_lmdb_size_bytes ")
            .u(p.lmdb_size.load(Relaxed))
            .end()?;

        // Kong's memory gauges, mapped onto what this process has: Kong's entity cache
        // (`kong_db_cache` shared dict) is the LMDB map here (used = data file size,
        // capacity = `lmdb_map_size`); the worker Lua VMs are the one gateway process, whose
        // resident memory is reported under its pid.
        for (name, help, v) in [
            (
                "kong_memory_lua_shared_dict_bytes",
                "Allocated slabs in bytes in a shared_dict",
                p.lmdb_size.load(Relaxed),
            ),
            (
                "kong_memory_lua_shared_dict_total_bytes",
                "Total capacity in bytes of a shared_dict",
                p.lmdb_map_size.load(Relaxed),
            ),
        ] {
            o.family(name, help, "gauge")?;
            o.s(name)
                .s("{node_id=\"")
                .s(node)
                .s("\",shared_dict=\"kong_db_cache\",kong_subsystem=\"")
                .s(sub)
                .s("\"} ")
                .u(v)
                .end()?;
        }
        o.family(
            "kong_memory_workers_lua_vms_bytes",
            "Allocated bytes in worker Lua VM",
            "gauge",
        )?;
        o.s("kong_memory_workers_lua_vms_bytes{node_id=\"")
            .s(node)
            .s("\",pid=\"")
            .u(u64::from(std::process::id()))
            .s("\",kong_subsystem=\"")
            .s(sub)
            .s("\"} ")
            .u(p.resident.load(Relaxed))
            .end()?;

        let ex = lock(&self.externals);
        let mut last: Option<&str> = None;
        for e in ex.iter() {
            if last != Some(e.name.as_str()) {
                o.family(
                    &e.name,
                    &e.help,
                    if e.counter { "counter" } else { "gauge" },
                )?;
                last = Some(&e.name);
            }
            o.s(&e.name);
            if !e.labels.is_empty() {
                o.s("{").s(&e.labels).s("}");
            }
            o.s(" ").u(e.value.load(Relaxed)).end()?;
        }
        Ok(())
    }
}

fn status_line<W: Write>(
    o: &mut Out<'_, W>,
    b: &Block,
    code: u16,
    src: Source,
    consumer: &str,
    v: u64,
) -> io::Result<()> {
    o.s("kong_http_requests_total{")
        .s(&b.svc_route)
        .s(",code=\"")
        .u(code as u64);
    o.s("\",source=\"")
        .s(src.label())
        .s("\",")
        .s(&b.workspace)
        .s(",")
        .s(consumer);
    o.s("} ").u(v).end()
}

fn histogram<W: Write>(
    o: &mut Out<'_, W>,
    blocks: &[Arc<Block>],
    name: &str,
    help: &str,
    off: usize,
    bounds: &[u64],
) -> io::Result<()> {
    o.family(name, help, "histogram")?;
    // Per family: each bucket's `,le="…"} ` tail. Per block: its `name_bucket{labels` head,
    // written once, so a bucket line is two copies and one number instead of eight pieces.
    let les: Vec<String> = bounds
        .iter()
        .map(|le| format!(",le=\"{le}\"}} "))
        .chain([",le=\"+Inf\"} ".to_owned()])
        .collect();
    let mut head: Vec<u8> = Vec::with_capacity(256);
    let mut counts = vec![0u64; bounds.len() + 1];
    for b in blocks {
        b.sums(off, &mut counts);
        let total = counts.iter().fold(0u64, |a, c| a.wrapping_add(*c));
        if total == 0 {
            continue; // like Kong: a series appears once observed
        }
        head.clear();
        for part in [name, "_bucket{", &b.svc_route, ",", &b.workspace] {
            head.extend_from_slice(part.as_bytes());
        }
        let mut cum = 0u64;
        for (c, le) in counts.iter().zip(&les) {
            cum += c;
            o.b(&head).s(le).u(cum).end()?;
        }
        // `name_sum{` / `name_count{` + the same labels: the head without `_bucket{`.
        let labels = head
            .get(name.len() + "_bucket{".len()..)
            .unwrap_or_default();
        o.s(name).s("_sum{").b(labels).s("} ");
        o.u(b.sum(off + bounds.len() + 1)).end()?;
        o.s(name).s("_count{").b(labels).s("} ").u(total).end()?;
    }
    Ok(())
}
