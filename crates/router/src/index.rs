//! Candidate index: on a cache miss, only the matchers that can possibly match are evaluated.
//!
//! Each matcher goes into exactly one bucket, chosen by the most selective constraint it has:
//! its exact hosts (a hash map host → matchers), else the literal prefixes its paths must start
//! with (a hash map prefix → matchers, probed once per distinct prefix length; regex paths use
//! the literal text their pattern starts with), else the "always" list. Every list holds matcher
//! positions in ascending order, i.e. in evaluation order, so a k-way merge of the lists that
//! apply to a request visits candidates in exactly the order of the linear scan, and the first
//! one that matches is the linear scan's answer. A matcher is left out of a request's lists
//! only when a constraint it cannot satisfy rules it out, which is what makes the two agree.
//!
//! Lookups hash with FxHash: the tables are built from the configuration, and a request can
//! only probe them, never insert, so a weak hash cannot be turned into a flooding attack.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::matcher::Matcher;

/// FxHash (rustc's), enough for config-built tables.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Most lists a single request can draw from before the index gives up and the caller scans
/// linearly (only reachable with thousands of distinct prefix lengths on one path).
const MAX_LISTS: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Index {
    by_host: FxMap<Box<[u8]>, Vec<u32>>,
    by_prefix: FxMap<Box<[u8]>, Vec<u32>>,
    /// Distinct prefix lengths in `by_prefix`, ascending.
    prefix_lens: Vec<usize>,
    always: Vec<u32>,
}

fn push_unique(list: &mut Vec<u32>, i: u32) {
    if list.last() != Some(&i) {
        list.push(i);
    }
}

fn add<'l>(lists: &mut [&'l [u32]; MAX_LISTS], n: &mut usize, l: &'l [u32]) -> Result<(), ()> {
    if l.is_empty() {
        return Ok(());
    }
    *lists.get_mut(*n).ok_or(())? = l;
    *n += 1;
    Ok(())
}

impl Index {
    pub(crate) fn build(matchers: &[Matcher]) -> Index {
        let mut ix = Index::default();
        for (i, m) in matchers.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else {
                ix.always.push(u32::MAX);
                continue;
            };
            if let Some(hosts) = m.exact_hosts() {
                for h in hosts {
                    push_unique(ix.by_host.entry(h.as_bytes().into()).or_default(), i);
                }
            } else if let Some(prefixes) = m.path_prefixes() {
                for p in prefixes {
                    push_unique(ix.by_prefix.entry(p.as_bytes().into()).or_default(), i);
                    if let Err(at) = ix.prefix_lens.binary_search(&p.len()) {
                        ix.prefix_lens.insert(at, p.len());
                    }
                }
            } else {
                ix.always.push(i);
            }
        }
        // Sub-routes of one route can share a key, and a matcher with several prefixes may
        // have been pushed to one list twice; keep the lists strictly ascending.
        for list in ix.by_host.values_mut().chain(ix.by_prefix.values_mut()) {
            list.sort_unstable();
            list.dedup();
            list.shrink_to_fit();
        }
        ix
    }

    /// Calls `eval` on every candidate for (`host`, `path`) in evaluation order until it
    /// returns `Some`. `Err(())` means too many lists: the caller must scan linearly.
    pub(crate) fn find<T>(
        &self,
        host: &str,
        path: &str,
        mut eval: impl FnMut(usize) -> Option<T>,
    ) -> Result<Option<T>, ()> {
        // Safety valve for `u32` overflow in `build` (more than 4 billion matchers).
        if self.always.last() == Some(&u32::MAX) {
            return Err(());
        }
        let empty: &[u32] = &[];
        let mut lists = [empty; MAX_LISTS];
        let mut n = 0;
        add(&mut lists, &mut n, &self.always)?;
        if !self.by_host.is_empty() {
            if let Some(l) = self.by_host.get(host.as_bytes()) {
                add(&mut lists, &mut n, l)?;
            }
        }
        let p = path.as_bytes();
        for &len in &self.prefix_lens {
            let Some(head) = p.get(..len) else { break };
            if let Some(l) = self.by_prefix.get(head) {
                add(&mut lists, &mut n, l)?;
            }
        }
        let lists = &mut lists[..n];
        if let [only] = lists {
            return Ok(only.iter().find_map(|&i| eval(i as usize)));
        }
        let mut last = u32::MAX;
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (k, l) in lists.iter().enumerate() {
                if let Some(&head) = l.first() {
                    if best.is_none_or(|(_, b)| head < b) {
                        best = Some((k, head));
                    }
                }
            }
            let Some((k, i)) = best else {
                return Ok(None);
            };
            lists[k] = &lists[k][1..];
            if i == last {
                continue;
            }
            last = i;
            if let Some(t) = eval(i as usize) {
                return Ok(Some(t));
            }
        }
    }
}
