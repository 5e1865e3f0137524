//! Status codes get a fixed per-route counter table so recording a code is an array index, not a
//! map lookup. Codes outside the table (rare: 418, 451, …) go to a small per-thread overflow list.

/// The codes with a dedicated counter, per response source.
pub(crate) const CODES: [u16; 44] = [
    100, 101, 200, 201, 202, 203, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 402, 403, 404,
    405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 422, 426, 429, 431, 494, 495, 496, 497,
    499, 500, 501, 502, 503, 504,
];

pub(crate) const N: usize = CODES.len();
const NONE: u8 = u8::MAX;

/// code → index in [`CODES`], or `NONE`.
static INDEX: [u8; 600] = build_index();

const fn build_index() -> [u8; 600] {
    let mut t = [NONE; 600];
    let mut i = 0;
    while i < N {
        t[CODES[i] as usize] = i as u8;
        i += 1;
    }
    t
}

/// Index of `code` in the fixed table, if it has one.
#[inline]
pub(crate) fn index(code: u16) -> Option<usize> {
    match INDEX.get(code as usize) {
        Some(&i) if i != NONE => Some(i as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_round_trips() {
        for (i, c) in super::CODES.iter().enumerate() {
            assert_eq!(super::index(*c), Some(i));
        }
        assert_eq!(super::index(418), None);
        assert_eq!(super::index(9999), None);
    }
}
