//! Weighted round-robin over an upstream's targets.
//!
//! The order is computed once per snapshot (a "wheel", like Kong's ring balancer) with smooth
//! weighted round-robin, so a pick is one relaxed atomic increment and an index: no locks and no
//! per-pick arithmetic over all targets. Targets with weight 0 are never picked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest wheel we build; weights are scaled down by their gcd first, so this only bounds
/// pathological configs.
const MAX_WHEEL: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port`, used as the pool key and for connecting.
    pub authority: Arc<str>,
    pub host: String,
    pub port: u16,
}

#[derive(Debug)]
pub(crate) struct Balancer {
    pub targets: Vec<Target>,
    wheel: Vec<u32>,
    cursor: AtomicUsize,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Balancer {
    pub fn new(weighted: Vec<(Target, u32)>) -> Balancer {
        let weighted: Vec<(Target, u32)> = weighted.into_iter().filter(|(_, w)| *w > 0).collect();
        let g = weighted
            .iter()
            .fold(0u64, |g, (_, w)| gcd(g, u64::from(*w)));
        let weights: Vec<i64> = weighted
            .iter()
            .map(|(_, w)| (u64::from(*w) / g.max(1)) as i64)
            .collect();
        let total: i64 = weights.iter().sum();
        let len = usize::try_from(total).unwrap_or(MAX_WHEEL).min(MAX_WHEEL);
        let mut current = vec![0i64; weights.len()];
        let mut wheel = Vec::with_capacity(len);
        for _ in 0..len {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            wheel.push(best as u32);
        }
        Balancer {
            targets: weighted.into_iter().map(|(t, _)| t).collect(),
            wheel,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next target, or `None` when every target has weight 0.
    pub fn pick(&self) -> Option<&Target> {
        if self.wheel.is_empty() {
            return None;
        }
        let n = self.cursor.fetch_add(1, Ordering::Relaxed) % self.wheel.len();
        self.targets.get(self.wheel[n] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Target {
        Target {
            authority: format!("{name}:80").into(),
            host: name.into(),
            port: 80,
        }
    }

    #[test]
    fn picks_in_proportion_to_weight_and_interleaves() {
        let b = Balancer::new(vec![(t("a"), 300), (t("b"), 100), (t("z"), 0)]);
        let picks: Vec<&str> = (0..8)
            .map(|_| b.pick().map_or("", |t| t.host.as_str()))
            .collect();
        assert_eq!(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        let b = Balancer::new(vec![(t("a"), 0)]);
        assert!(b.pick().is_none());
    }
}
