//! A minimal protobuf writer for messages whose schema is written out by hand (OTLP spans).
//!
//! Why not `prost`: the exporters encode one small fixed schema on their shipper thread; a
//! derive would need message structs filled from our own types first (an allocation per field),
//! while writing fields straight into the batch buffer needs only varints, fixed64 and
//! length-delimited fields. Nested messages are written in place: one byte is reserved for the
//! length and, when the body turns out longer than 127 bytes, the body is moved up by the extra
//! length bytes (one `memmove`), so the output stays canonical (shortest varints).

/// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// Appends `v` as a base-128 varint.
#[inline]
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from(field << 3 | wire));
}

/// A varint field (`uint32`, `uint64`, enums, non-negative `int64`); written even when 0.
#[inline]
pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

/// An `int64` field (negative values take ten bytes, as protobuf specifies).
#[inline]
pub fn int(out: &mut Vec<u8>, field: u32, v: i64) {
    uint(out, field, v as u64);
}

/// A `fixed64` field (little-endian).
#[inline]
pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `bytes` or `string` field; written even when empty (a set `oneof` member must be).
#[inline]
pub fn bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    tag(out, field, LEN);
    varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// A `string` field made of several pieces (no joined copy first).
pub fn bytes_parts(out: &mut Vec<u8>, field: u32, parts: &[&[u8]]) {
    tag(out, field, LEN);
    varint(out, parts.iter().map(|p| p.len() as u64).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// A nested message field whose body `body` writes.
#[inline]
pub fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    let n = varint_len(len as u64);
    if n > 1 {
        out.splice(at + 1..at + 1, std::iter::repeat_n(0, n - 1));
    }
    let mut v = len as u64;
    for b in &mut out[at..at + n] {
        *b = v as u8 & 0x7f | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 1]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 1]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            ),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            varint(&mut out, *v);
            assert_eq!(&out, want, "{v}");
            assert_eq!(varint_len(*v), want.len(), "{v}");
        }
    }

    #[test]
    fn fields() {
        let mut out = Vec::new();
        uint(&mut out, 6, 2);
        fixed64(&mut out, 7, 0x0102_0304_0506_0708);
        bytes(&mut out, 5, b"kong");
        bytes_parts(&mut out, 1, &[b"ab", b"", b"c"]);
        int(&mut out, 3, -1);
        let mut want = vec![0x30, 2, 0x39, 8, 7, 6, 5, 4, 3, 2, 1, 0x2a, 4];
        want.extend_from_slice(b"kong");
        want.extend_from_slice(&[0x0a, 3, b'a', b'b', b'c', 0x18]);
        want.extend_from_slice(&[0xff; 9]);
        want.push(1);
        assert_eq!(out, want);
    }

    /// Nested lengths of every varint size, with bytes before and after the message.
    #[test]
    fn nested_lengths() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut out = vec![0xee];
            message(&mut out, 2, |o| {
                message(o, 1, |o| o.extend(std::iter::repeat_n(7u8, len)));
            });
            out.push(0xdd);
            let inner = {
                let mut v = vec![0x0a];
                varint(&mut v, len as u64);
                v.extend(std::iter::repeat_n(7u8, len));
                v
            };
            let mut want = vec![0xee, 0x12];
            varint(&mut want, inner.len() as u64);
            want.extend_from_slice(&inner);
            want.push(0xdd);
            assert_eq!(out, want, "{len}");
        }
    }
}
