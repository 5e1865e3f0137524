//! [`Router::explain`]: why a request goes where it goes, for `gatehouse explain` and the Admin
//! API's debug endpoint. It evaluates every matcher (no index, no cache) so that it can report
//! the candidates that lost, which is fine off the hot path.

use uuid::Uuid;

use crate::matcher::{Ctx, Matcher};
use crate::{Match, Request, RequestExtra, Router};

/// How many losing candidates are reported on each side of the winner.
const MAX_LOSERS: usize = 10;

/// Kong's 64-bit priority split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityBreakdown {
    /// A classic-fields route (`transform.lua get_priority`, kong.md 2.4).
    Classic {
        /// Bits 61-63: number of non-empty fields.
        match_weight: u8,
        /// Bit 60: hosts hold no wildcard.
        plain_host_only: bool,
        /// Bits 52-59: distinct header names.
        header_count: u8,
        /// Bit 51: the path group is regex.
        regex_url: bool,
        /// Bits 19-50: regex_priority (regex paths only).
        regex_priority: u64,
        /// Bits 0-18: prefix path length.
        uri_length: u32,
    },
    /// An `expression` route: `0xFF << 56 | priority`.
    Expression { priority: u64 },
}

impl PriorityBreakdown {
    pub fn of(raw: u64, expression: bool) -> PriorityBreakdown {
        if expression {
            return PriorityBreakdown::Expression {
                priority: raw & !(0xFF << 56),
            };
        }
        PriorityBreakdown::Classic {
            match_weight: (raw >> 61) as u8,
            plain_host_only: raw & (1 << 60) != 0,
            header_count: ((raw >> 52) & 0xFF) as u8,
            regex_url: raw & (1 << 51) != 0,
            regex_priority: (raw >> 19) & ((1 << 32) - 1),
            uri_length: (raw & 0x7FFFF) as u32,
        }
    }
}

/// One matcher, as evaluated for the explained request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Index into `Config::routes`.
    pub route: usize,
    /// The matcher id (a split sub-route has a derived id): the tie-break key.
    pub id: Uuid,
    /// Position in evaluation order (0 = evaluated first).
    pub position: usize,
    pub priority: u64,
    pub breakdown: PriorityBreakdown,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This matcher matched (the winner, or one that also matched but comes later).
    Matched { strip_len: usize },
    /// The first field (ATC name, e.g. `http.host`, or `expression`) that did not match.
    Rejected { field: &'static str },
}

/// What [`Router::explain`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Same as [`Router::find`].
    pub matched: Option<Match>,
    /// The winning matcher.
    pub winner: Option<Candidate>,
    /// Matchers evaluated before the winner that did not match (the nearest first, at most 10).
    pub rejected_before: Vec<Candidate>,
    /// Matchers after the winner that would also have matched but lost on priority (at most 10).
    pub shadowed: Vec<Candidate>,
    /// Matchers evaluated in total.
    pub evaluated: usize,
}

fn candidate(m: &Matcher, position: usize, outcome: Outcome) -> Candidate {
    Candidate {
        route: m.route,
        id: m.id,
        position,
        priority: m.priority,
        breakdown: PriorityBreakdown::of(m.priority, m.is_expression()),
        outcome,
    }
}

impl Router {
    /// Explains the routing decision for `req` (see [`Explanation`]).
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        self.explain_with(req, &RequestExtra::NONE)
    }

    /// [`Router::explain`] with the optional request data expressions may read.
    pub fn explain_with(&self, req: &Request<'_>, extra: &RequestExtra<'_>) -> Explanation {
        let cx = Ctx::new(req, extra);
        let mut rejected = Vec::new();
        let mut winner = None;
        let mut matched = None;
        let mut shadowed = Vec::new();
        let mut evaluated = 0;
        for (pos, m) in self.matchers.iter().enumerate() {
            evaluated += 1;
            match m.check(&cx) {
                Ok(hit) => {
                    let c = candidate(
                        m,
                        pos,
                        Outcome::Matched {
                            strip_len: hit.strip_len,
                        },
                    );
                    if winner.is_none() {
                        matched = Some(Match {
                            route: m.route,
                            service: m.service,
                            strip_len: hit.strip_len,
                        });
                        winner = Some(c);
                    } else {
                        shadowed.push(c);
                        if shadowed.len() >= MAX_LOSERS {
                            break;
                        }
                    }
                }
                Err(field) => {
                    if winner.is_none() {
                        rejected.push(candidate(m, pos, Outcome::Rejected { field }));
                    }
                }
            }
        }
        rejected.reverse();
        rejected.truncate(MAX_LOSERS);
        Explanation {
            matched,
            winner,
            rejected_before: rejected,
            shadowed,
            evaluated,
        }
    }
}
