//! The `Transfer-Encoding: chunked` decoder for upstream response bodies.
//!
//! Strict on purpose (a proxy that reads framing loosely is one half of a smuggling attack):
//! hex sizes of at most 16 digits, CRLF and nothing else as line ends, optional whitespace and
//! extensions after the size, trailer lines read and dropped. Framing bytes are consumed as
//! they arrive, so a slow or long extension never grows the buffer.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk extension and trailer section we read before calling the body malformed.
const MAX_EXTENSION: u32 = 4 * 1024;
const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size (`digits` read so far).
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size digits.
    SizeWs {
        value: u64,
    },
    /// A chunk extension, up to the CR.
    Ext {
        value: u64,
        len: u32,
    },
    /// The LF after the size line's CR.
    SizeLf {
        value: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    TrailerStart {
        len: u32,
    },
    TrailerLine {
        len: u32,
    },
    TrailerLf {
        len: u32,
    },
    /// The LF of the final empty line.
    EndLf,
    Done,
}

/// Where a chunked body is.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next piece of body data in `buf`, `Ok(None)` when `buf` holds no more of it (see
    /// [`Decoder::is_done`] for whether more will come). Framing after the data is consumed
    /// as far as `buf` allows, so the end of the body is seen with its last data.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, &'static str> {
        self.skip_framing(buf)?;
        let State::Data { left } = self.state else {
            return Ok(None);
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let data = buf.split_to(n).freeze();
        let left = left - n as u64;
        self.state = if left == 0 {
            State::DataCr
        } else {
            State::Data { left }
        };
        self.skip_framing(buf)?;
        Ok(Some(data))
    }

    /// Consumes framing bytes until data, the end, or the end of `buf`.
    fn skip_framing(&mut self, buf: &mut BytesMut) -> Result<(), &'static str> {
        let mut used = 0;
        let mut state = self.state;
        for &b in buf.iter() {
            state = match state {
                State::Data { .. } | State::Done => break,
                State::Size { value, digits } => match hex(b) {
                    Some(d) if digits < 16 => State::Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    Some(_) => return Err("chunk size too large"),
                    None if digits == 0 => return Err("invalid chunk size"),
                    None => after_size(b, value)?,
                },
                State::SizeWs { value } => after_size(b, value)?,
                State::Ext { value, len } => match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => return Err("bare LF in chunk extension"),
                    _ if len >= MAX_EXTENSION => return Err("chunk extension too long"),
                    _ => State::Ext {
                        value,
                        len: len + 1,
                    },
                },
                State::SizeLf { value } => match (b, value) {
                    (b'\n', 0) => State::TrailerStart { len: 0 },
                    (b'\n', left) => State::Data { left },
                    _ => return Err("invalid chunk size line"),
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                State::DataCr | State::DataLf => return Err("missing CRLF after chunk data"),
                State::TrailerStart { len } => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err("bare LF in trailers"),
                    _ => State::TrailerLine { len: len + 1 },
                },
                State::TrailerLine { len } => match b {
                    b'\r' => State::TrailerLf { len },
                    b'\n' => return Err("bare LF in trailers"),
                    _ if len >= MAX_TRAILERS => return Err("trailers too long"),
                    _ => State::TrailerLine { len: len + 1 },
                },
                State::TrailerLf { len } if b == b'\n' => State::TrailerStart { len },
                State::TrailerLf { .. } | State::EndLf if b != b'\n' => {
                    return Err("invalid line end in trailers")
                }
                State::TrailerLf { .. } | State::EndLf => State::Done,
            };
            used += 1;
        }
        buf.advance(used);
        self.state = state;
        Ok(())
    }
}

fn after_size(b: u8, value: u64) -> Result<State, &'static str> {
    Ok(match b {
        b' ' | b'\t' => State::SizeWs { value },
        b';' => State::Ext { value, len: 0 },
        b'\r' => State::SizeLf { value },
        _ => return Err("invalid chunk size line"),
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes: the body, whether it ended, and the
    /// bytes left over after its end.
    fn decode(wire: &[u8], step: usize) -> Result<(Vec<u8>, bool, Vec<u8>), &'static str> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(data) = d.next(&mut buf)? {
                body.extend_from_slice(&data);
            }
            if d.is_done() {
                break;
            }
        }
        Ok((body, d.is_done(), buf.to_vec()))
    }

    #[test]
    fn well_formed_bodies_decode_whatever_the_read_sizes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"005\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5 ;ext\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\t\r\nhello\r\n0\r\n\r\n", b"hello"),
            (
                b"5\r\nhello\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\n",
                b"hello",
            ),
            (b"0;last\r\n\r\n", b""),
        ];
        for (wire, want) in cases {
            for step in [1, 2, 3, 7, wire.len()] {
                let (body, done, rest) = decode(wire, step).unwrap_or_else(|e| {
                    panic!("{:?} step {step}: {e}", String::from_utf8_lossy(wire))
                });
                assert_eq!(
                    &body,
                    want,
                    "{:?} step {step}",
                    String::from_utf8_lossy(wire)
                );
                assert!(done, "{:?} step {step}", String::from_utf8_lossy(wire));
                assert!(rest.is_empty());
            }
        }
    }

    #[test]
    fn bytes_after_the_end_are_left_in_the_buffer() {
        let (body, done, rest) =
            decode(b"2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", 64).expect("valid");
        assert_eq!((body.as_slice(), done), (&b"hi"[..], true));
        assert_eq!(rest, b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        for wire in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\nX: y\r\n",
        ] {
            let (_, done, _) = decode(wire, 64).expect("valid so far");
            assert!(!done, "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn malformed_framing_is_an_error() {
        let cases: &[&[u8]] = &[
            b"\r\n",                               // no size
            b"x\r\n",                              // not hex
            b"-5\r\nhello\r\n0\r\n\r\n",           // sign
            b"0x5\r\nhello\r\n0\r\n\r\n",          // prefix
            b"5\nhello\r\n0\r\n\r\n",              // bare LF after the size
            b"5\r\nhelloXX0\r\n\r\n",              // data longer than its size
            b"5\r\nhello\n0\r\n\r\n",              // bare LF after data
            b"5\r\nhello\r\n0\r\n\n",              // bare LF at the end
            b"5\r\nhello\r\n0\r\nX: y\nZ\r\n\r\n", // bare LF in trailers
            b"5 5\r\nhello\r\n0\r\n\r\n",          // digits after whitespace
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",       // LF inside an extension
            b"10000000000000000\r\n",              // 17 digits: over u64
        ];
        for wire in cases {
            for step in [1, wire.len()] {
                assert!(
                    decode(wire, step).is_err(),
                    "{:?} step {step} should fail",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn long_extensions_and_trailers_are_refused() {
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize + 1));
        ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert!(decode(&ext, 512).is_err());
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"X-Trailer: value\r\n");
        }
        trailers.extend_from_slice(b"\r\n");
        assert!(decode(&trailers, 512).is_err());
    }

    #[test]
    fn the_largest_size_parses() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
        assert_eq!(
            d.next(&mut buf).expect("valid").as_deref(),
            Some(&b"ab"[..])
        );
        assert_eq!(d.state, State::Data { left: u64::MAX - 2 });
    }

    #[test]
    fn random_input_never_panics() {
        // Bytes drawn mostly from the framing alphabet, so the decoder gets deep.
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF;= \t\r\nxZ";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut wire = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                wire.push(ALPHABET[(seed % ALPHABET.len() as u64) as usize]);
            }
            let _ = decode(&wire, 1 + (seed % 5) as usize);
        }
    }
}
