//! A per-thread match cache ([`MatchCache`]), keyed only on the request fields the routes read.
//!
//! Kong ≤ 3.5 keyed its cache on every request header, so the hit rate was close to zero; 3.6
//! keys on the fields the expressions reference but leaves the scheme out, so http and https
//! share entries. Here the [`KeySpec`] is computed once per router from its matchers, the key is
//! built into a fixed-capacity buffer owned by the cache (a key that does not fit is simply not
//! cached), and a hit costs one hash lookup and no allocation.
//!
//! Every field is written length-prefixed, so distinct requests can never produce the same key.
//! The cache remembers the generation of the router it was filled from and empties itself when
//! it is used with another one (a snapshot swap), so no stale match is ever returned.
//!
//! Memory is bounded twice: by an entry count sized from the route count (Kong's formula for the
//! positive side) and by a byte budget for the stored keys. When either is reached, about half of
//! the entries are dropped at random (amortised O(1) per insertion).

use std::collections::{HashMap, HashSet};

/// foldhash, seeded per process: a fraction of SipHash's cost per lookup (one per request),
/// still not predictable enough for a client to aim collisions at the cache.
type Hasher = foldhash::fast::RandomState;

use crate::{Match, Request, RequestExtra, Router};

/// Longest key that is cached; longer requests (huge paths or header values) are routed
/// without the cache.
pub const MAX_KEY: usize = 512;
/// Byte budget for the keys of the positive side, per cache (per proxy thread).
const POS_BYTES: usize = 16 << 20;
/// Byte budget for the keys of the negative side.
const NEG_BYTES: usize = 4 << 20;
/// Kong's `DEFAULT_MATCH_LRUCACHE_SIZE`.
const BASE_ENTRIES: usize = 5000;
const MAX_POS_ENTRIES: usize = 100_000;

/// Which request fields the configured routes read (the cache key holds exactly these, plus
/// the path and the scheme).
#[derive(Debug, Default, Clone)]
pub struct KeySpec {
    pub(crate) method: bool,
    pub(crate) host: bool,
    /// `net.dst.port`: a `host:port` entry or an expression reading it.
    pub(crate) port: bool,
    pub(crate) sni: bool,
    pub(crate) src_ip: bool,
    pub(crate) src_port: bool,
    pub(crate) dst_ip: bool,
    /// Lower-case header names (with `-`), sorted, deduplicated.
    pub(crate) headers: Vec<Box<str>>,
    /// Query argument names, sorted, deduplicated.
    pub(crate) queries: Vec<Box<str>>,
}

impl KeySpec {
    pub(crate) fn add_header(&mut self, name: &str) {
        if let Err(at) = self.headers.binary_search_by(|h| (**h).cmp(name)) {
            self.headers.insert(at, name.into());
        }
    }

    pub(crate) fn add_query(&mut self, name: &str) {
        if let Err(at) = self.queries.binary_search_by(|h| (**h).cmp(name)) {
            self.queries.insert(at, name.into());
        }
    }

    /// The header names the key reads (lower-case).
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|h| &**h)
    }
}

/// Writes into a fixed-capacity buffer; remembers when something did not fit.
struct KeyWriter<'b> {
    buf: &'b mut Vec<u8>,
    overflow: bool,
}

impl KeyWriter<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        if self.overflow || self.buf.len() + bytes.len() > MAX_KEY {
            self.overflow = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// A length-prefixed field (the prefix makes concatenations unambiguous).
    fn field(&mut self, bytes: &[u8]) {
        match u16::try_from(bytes.len()) {
            Ok(n) => {
                self.raw(&n.to_le_bytes());
                self.raw(bytes);
            }
            Err(_) => self.overflow = true,
        }
    }

    fn opt(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.raw(&[0]),
            Some(b) => {
                self.raw(&[1]);
                self.field(b);
            }
        }
    }
}

/// Builds the key of `req` under `spec` into `buf`; false when it does not fit.
fn build_key(
    spec: &KeySpec,
    req: &Request<'_>,
    extra: &RequestExtra<'_>,
    buf: &mut Vec<u8>,
) -> bool {
    buf.clear();
    let mut w = KeyWriter {
        buf,
        overflow: false,
    };
    w.raw(&[u8::from(req.https)]);
    w.field(req.path.as_bytes());
    if spec.method {
        w.field(req.method.as_bytes());
    }
    if spec.host {
        w.field(req.host.as_bytes());
    }
    if spec.port {
        w.raw(&req.dst_port.to_le_bytes());
        if !spec.host {
            // The Host header's port overrides the connection's.
            w.field(req.host.as_bytes());
        }
    }
    if spec.sni {
        w.opt(req.sni.map(str::as_bytes));
    }
    if spec.src_ip {
        w.opt(
            extra
                .src
                .map(|s| s.ip())
                .as_ref()
                .map(ip_bytes)
                .as_ref()
                .map(|b| b.as_slice()),
        );
    }
    if spec.src_port {
        w.opt(
            extra
                .src
                .map(|s| s.port().to_le_bytes())
                .as_ref()
                .map(|b| b.as_slice()),
        );
    }
    if spec.dst_ip {
        w.opt(
            extra
                .dst_ip
                .as_ref()
                .map(ip_bytes)
                .as_ref()
                .map(|b| b.as_slice()),
        );
    }
    for name in &spec.headers {
        w.raw(&[2]);
        req.headers.any_value(name, &mut |v| {
            w.raw(&[1]);
            w.field(v.as_bytes());
            w.overflow
        });
    }
    if !spec.queries.is_empty() {
        w.raw(&[3]);
        w.opt(extra.query.map(str::as_bytes));
    }
    !w.overflow
}

/// 16 bytes (IPv4 mapped) so both families have one fixed width.
fn ip_bytes(ip: &std::net::IpAddr) -> [u8; 17] {
    let mut out = [0u8; 17];
    match ip {
        std::net::IpAddr::V4(v4) => out[1..5].copy_from_slice(&v4.octets()),
        std::net::IpAddr::V6(v6) => {
            out[0] = 6;
            out[1..].copy_from_slice(&v6.octets());
        }
    }
    out
}

/// Hit/miss counters, for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub negative_hits: u64,
    pub misses: u64,
    /// Requests whose key did not fit [`MAX_KEY`].
    pub uncacheable: u64,
}

/// A match cache for one proxy thread (no locks, not `Sync`-shared): create it with
/// [`Router::new_cache`] or [`MatchCache::new`], use it with [`Router::find_cached`].
/// Using it with another router flushes it.
#[derive(Debug)]
pub struct MatchCache {
    generation: u64,
    key: Vec<u8>,
    pos: HashMap<Box<[u8]>, Match, Hasher>,
    neg: HashSet<Box<[u8]>, Hasher>,
    pos_cap: usize,
    neg_cap: usize,
    pos_bytes: usize,
    neg_bytes: usize,
    rng: u64,
    stats: CacheStats,
}

fn entries_for(routes: usize) -> usize {
    (routes.div_ceil(BASE_ENTRIES).max(1) * BASE_ENTRIES).min(MAX_POS_ENTRIES)
}

impl MatchCache {
    /// An empty cache sized for `router`.
    pub fn new(router: &Router) -> MatchCache {
        let mut c = MatchCache {
            generation: 0,
            key: Vec::with_capacity(MAX_KEY),
            pos: HashMap::default(),
            neg: HashSet::default(),
            pos_cap: 0,
            neg_cap: 0,
            pos_bytes: 0,
            neg_bytes: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ router.generation(),
            stats: CacheStats::default(),
        };
        c.reset_for(router);
        c
    }

    fn reset_for(&mut self, router: &Router) {
        self.generation = router.generation();
        self.pos_cap = entries_for(router.len());
        self.neg_cap = entries_for(router.len());
        self.pos.clear();
        self.neg.clear();
        // Reserve once so that steady-state insertions do not grow the tables.
        self.pos.reserve(self.pos_cap.min(16_384));
        self.neg.reserve(self.neg_cap.min(16_384));
        self.pos_bytes = 0;
        self.neg_bytes = 0;
    }

    /// Entries currently held (positive, negative).
    pub fn len(&self) -> (usize, usize) {
        (self.pos.len(), self.neg.len())
    }

    /// Whether both sides are empty.
    pub fn is_empty(&self) -> bool {
        self.pos.is_empty() && self.neg.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn evict_pos(&mut self) {
        let rng = &mut self.rng;
        let mut freed = 0;
        self.pos.retain(|k, _| {
            let keep = coin(rng);
            if !keep {
                freed += k.len();
            }
            keep
        });
        self.pos_bytes -= freed;
    }

    fn evict_neg(&mut self) {
        let rng = &mut self.rng;
        let mut freed = 0;
        self.neg.retain(|k| {
            let keep = coin(rng);
            if !keep {
                freed += k.len();
            }
            keep
        });
        self.neg_bytes -= freed;
    }
}

/// xorshift64: good enough to pick eviction victims.
fn coin(rng: &mut u64) -> bool {
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    x & 1 == 0
}

impl Router {
    /// A cache for this router (see [`MatchCache`]); one per proxy thread.
    pub fn new_cache(&self) -> MatchCache {
        MatchCache::new(self)
    }

    /// The fields the cache key is built from.
    pub fn key_spec(&self) -> &KeySpec {
        &self.key_spec
    }

    /// [`Router::find`] through `cache`. A hit does not allocate; a miss allocates the stored
    /// key (one allocation) and, rarely, evicts.
    pub fn find_cached(&self, cache: &mut MatchCache, req: &Request<'_>) -> Option<Match> {
        self.find_cached_with(cache, req, &RequestExtra::NONE)
    }

    /// [`Router::find_cached`] with the optional request data expressions may read.
    pub fn find_cached_with(
        &self,
        cache: &mut MatchCache,
        req: &Request<'_>,
        extra: &RequestExtra<'_>,
    ) -> Option<Match> {
        if cache.generation != self.generation() {
            cache.reset_for(self);
        }
        if !build_key(&self.key_spec, req, extra, &mut cache.key) {
            cache.stats.uncacheable += 1;
            return self.find_with(req, extra);
        }
        if let Some(m) = cache.pos.get(cache.key.as_slice()) {
            cache.stats.hits += 1;
            return Some(*m);
        }
        if cache.neg.contains(cache.key.as_slice()) {
            cache.stats.negative_hits += 1;
            return None;
        }
        cache.stats.misses += 1;
        let found = self.find_with(req, extra);
        let klen = cache.key.len();
        match found {
            Some(m) => {
                if cache.pos.len() >= cache.pos_cap || cache.pos_bytes + klen > POS_BYTES {
                    cache.evict_pos();
                }
                cache.pos_bytes += klen;
                cache.pos.insert(cache.key.as_slice().into(), m);
            }
            None => {
                if cache.neg.len() >= cache.neg_cap || cache.neg_bytes + klen > NEG_BYTES {
                    cache.evict_neg();
                }
                cache.neg_bytes += klen;
                cache.neg.insert(cache.key.as_slice().into());
            }
        }
        found
    }
}
