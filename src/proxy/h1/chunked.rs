//! chunked: finds where a chunked body ends without decoding it. The proxy
//! passes chunks through byte for byte and only needs the boundary, so the
//! scanner keeps a few bytes of state and skips chunk data in one step.
//!
//! Strict on framing (RFC 9112 §7.1): hex sizes of at most 16 digits, CRLF
//! everywhere (a bare LF is refused: it is how smuggling starts), extensions
//! and trailers bounded.

/// Bytes of chunk extensions allowed per chunk line.
const MAX_EXTENSION: usize = 4096;
/// Bytes of trailer section allowed.
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` so far.
    Size {
        digits: u8,
        size: u64,
    },
    /// After the size: optional whitespace and `;ext` up to CR.
    Extension {
        size: u64,
        len: usize,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Where a chunked body ends, fed piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chunked {
    state: State,
    trailers: usize,
}

/// What [`Chunked::scan`] found in a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// All of the piece belongs to the body; more is needed.
    More,
    /// The body ends after this many bytes of the piece.
    End(usize),
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size { digits: 0, size: 0 },
            trailers: 0,
        }
    }
}

impl Chunked {
    /// Scans the next piece of the body.
    pub(super) fn scan(&mut self, piece: &[u8]) -> Result<Scan, &'static str> {
        let mut i = 0;
        while i < piece.len() {
            let b = piece[i];
            self.state = match self.state {
                State::Data { left } => {
                    let take = left.min((piece.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data { left: left - take }
                    };
                    continue;
                }
                State::Size { digits, size } => match hex(b) {
                    Some(d) if digits < 16 => State::Size {
                        digits: digits + 1,
                        size: size << 4 | u64::from(d),
                    },
                    Some(_) => return Err("chunk size too large"),
                    None if digits == 0 => return Err("chunk size missing"),
                    None if b == b'\r' => State::SizeLf { size },
                    None if b == b';' || b == b' ' || b == b'\t' => {
                        State::Extension { size, len: 1 }
                    }
                    None => return Err("bad chunk size"),
                },
                State::Extension { size, len } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err("bare LF in chunk line"),
                    _ if len >= MAX_EXTENSION => return Err("chunk extension too long"),
                    _ => State::Extension { size, len: len + 1 },
                },
                State::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => State::TrailerStart,
                    (b'\n', left) => State::Data { left },
                    _ => return Err("chunk line not ended by CRLF"),
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { digits: 0, size: 0 },
                State::DataCr | State::DataLf => return Err("chunk data not followed by CRLF"),
                State::TrailerStart if b == b'\r' => State::EndLf,
                State::TrailerStart | State::TrailerLine => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err("trailers too large");
                    }
                    match b {
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err("bare LF in trailers"),
                        _ => State::TrailerLine,
                    }
                }
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::TrailerLf => return Err("trailer line not ended by CRLF"),
                State::EndLf if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(Scan::End(i + 1));
                }
                State::EndLf => return Err("chunked body not ended by CRLF"),
                State::Done => return Ok(Scan::End(i)),
            };
            i += 1;
        }
        Ok(if self.state == State::Done {
            Scan::End(0)
        } else {
            Scan::More
        })
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
