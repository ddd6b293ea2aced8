//! A bounds-checked reader of the protobuf wire format (the encoding of ONNX files), enough for
//! [`super`]: varints, fixed32/fixed64 and length-delimited fields, with every other field
//! skippable. Source: <https://protobuf.dev/programming-guides/encoding/>.
//!
//! A [`Reader`] walks one message, a window `[pos, end)` of the whole file, so every offset it
//! reports is an absolute byte offset into the file. Nothing here allocates: a length-delimited
//! field is returned as a sub-window that the caller reads in place.

use crate::error::{Error, Result};

/// Longest varint: 10 bytes carry 64 bits (7 per byte).
pub const MAX_VARINT_LEN: usize = 10;

/// One field's value, as the wire type gives it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Wire type 0: a base-128 varint.
    Varint(u64),
    /// Wire type 1: 8 little-endian bytes.
    Fixed64(u64),
    /// Wire type 2: a length-delimited payload (string, bytes, sub-message, packed repeated).
    Bytes(Reader<'a>),
    /// Wire type 5: 4 little-endian bytes.
    Fixed32(u32),
}

impl Value<'_> {
    /// The protobuf wire type number (0, 1, 2 or 5).
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        }
    }
}

/// A field: its number, value, and the offset of its tag.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// Field number (≥ 1).
    pub number: u32,
    /// The value.
    pub value: Value<'a>,
    /// Byte offset of the field's tag in the file.
    pub offset: u64,
}

/// A window `[pos, end)` of `data` (the whole file) holding one message or payload.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            end: data.len(),
        }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left in this window.
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Whether the window is used up.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The rest of the window as a slice (and the window is used up).
    pub fn take_rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..self.end];
        self.pos = self.end;
        s
    }

    fn truncated(&self, what: &str, needed: u64) -> Error {
        Error::Truncated {
            what: format!("onnx {what}"),
            offset: self.pos as u64,
            needed,
            available: self.remaining() as u64,
        }
    }

    /// Reads a base-128 varint. Errors: truncated, or longer than 10 bytes / over 64 bits
    /// ([`Error::Onnx`]).
    pub fn varint(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let Some(&b) = self.data[..self.end].get(start + i) else {
                let e = Error::Truncated {
                    what: "onnx varint".into(),
                    offset: start as u64,
                    needed: i as u64 + 1,
                    available: (self.end - start) as u64,
                };
                return Err(e);
            };
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                return Err(Error::Onnx {
                    reason: "varint longer than 64 bits".into(),
                    offset: start as u64,
                });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(v);
            }
        }
        Err(Error::Onnx {
            reason: format!("varint longer than {MAX_VARINT_LEN} bytes"),
            offset: start as u64,
        })
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        if self.remaining() < N {
            return Err(self.truncated(what, N as u64));
        }
        let mut b = [0u8; N];
        b.copy_from_slice(&self.data[self.pos..self.pos + N]);
        self.pos += N;
        Ok(b)
    }

    /// Reads 4 little-endian bytes.
    pub fn fixed32(&mut self) -> Result<u32> {
        self.fixed::<4>("fixed32").map(u32::from_le_bytes)
    }

    /// Reads 8 little-endian bytes.
    pub fn fixed64(&mut self) -> Result<u64> {
        self.fixed::<8>("fixed64").map(u64::from_le_bytes)
    }

    /// Reads a length prefix and returns the payload as a sub-window; this reader moves past
    /// it. Errors: [`Error::Truncated`] when the declared length runs past this window.
    pub fn bytes(&mut self) -> Result<Reader<'a>> {
        let at = self.pos;
        let len = self.varint()?;
        if len > self.remaining() as u64 {
            return Err(Error::Truncated {
                what: "onnx length-delimited field".into(),
                offset: at as u64,
                needed: len,
                available: self.remaining() as u64,
            });
        }
        let start = self.pos;
        // `len` ≤ remaining, so it fits in usize.
        self.pos += len as usize;
        Ok(Reader {
            data: self.data,
            pos: start,
            end: self.pos,
        })
    }

    /// The next field, or `None` at the end of the window. Errors: field number 0 or over
    /// 2²⁹ − 1, the deprecated group wire types (3, 4) and unknown ones (6, 7), truncation.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>> {
        if self.is_empty() {
            return Ok(None);
        }
        let offset = self.pos as u64;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(Error::Onnx {
                reason: format!("invalid field number {number}"),
                offset,
            });
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(self.fixed64()?),
            2 => Value::Bytes(self.bytes()?),
            5 => Value::Fixed32(self.fixed32()?),
            w => {
                return Err(Error::Onnx {
                    reason: format!("unsupported wire type {w} (field {number})"),
                    offset,
                })
            }
        };
        Ok(Some(Field {
            number: number as u32,
            value,
            offset,
        }))
    }
}

impl<'a> Field<'a> {
    fn wrong_type(&self, msg: &str, expected: &str) -> Error {
        Error::Onnx {
            reason: format!(
                "{msg} field {} has wire type {}, expected {expected}",
                self.number,
                self.value.wire_type()
            ),
            offset: self.offset,
        }
    }

    /// The value of a varint field (int32, int64, enum; `msg` names the message for errors).
    pub fn as_varint(&self, msg: &str) -> Result<u64> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong_type(msg, "varint")),
        }
    }

    /// A varint field read as a protobuf int64 (two's complement in 64 bits).
    pub fn as_i64(&self, msg: &str) -> Result<i64> {
        self.as_varint(msg).map(|v| v as i64)
    }

    /// A varint field read as a protobuf int32 (negative values are sign-extended to 64 bits;
    /// anything outside i32 is an error).
    pub fn as_i32(&self, msg: &str) -> Result<i32> {
        let v = self.as_i64(msg)?;
        i32::try_from(v).map_err(|_| Error::Onnx {
            reason: format!("{msg} field {}: {v} is out of int32 range", self.number),
            offset: self.offset,
        })
    }

    /// The payload of a length-delimited field.
    pub fn as_bytes(&self, msg: &str) -> Result<Reader<'a>> {
        match self.value {
            Value::Bytes(r) => Ok(r),
            _ => Err(self.wrong_type(msg, "length-delimited")),
        }
    }

    /// A length-delimited field as UTF-8 text.
    pub fn as_string(&self, msg: &str) -> Result<String> {
        let mut r = self.as_bytes(msg)?;
        let at = r.offset();
        std::str::from_utf8(r.take_rest())
            .map(str::to_owned)
            .map_err(|e| Error::Onnx {
                reason: format!("{msg} field {}: not UTF-8 ({e})", self.number),
                offset: at,
            })
    }

    /// A `float` field (fixed32).
    pub fn as_f32(&self, msg: &str) -> Result<f32> {
        match self.value {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(self.wrong_type(msg, "fixed32")),
        }
    }

    /// Appends a repeated varint field's values: one unpacked value, or a packed run.
    pub fn push_varints(&self, msg: &str, out: &mut Vec<i64>) -> Result<()> {
        match self.value {
            Value::Varint(v) => out.push(v as i64),
            Value::Bytes(mut r) => {
                while !r.is_empty() {
                    out.push(r.varint()? as i64);
                }
            }
            _ => return Err(self.wrong_type(msg, "varint or packed varints")),
        }
        Ok(())
    }

    /// Appends a repeated float field's values: one fixed32, or a packed run (whose length
    /// must be a multiple of 4).
    pub fn push_f32s(&self, msg: &str, out: &mut Vec<f32>) -> Result<()> {
        match self.value {
            Value::Fixed32(v) => out.push(f32::from_bits(v)),
            Value::Bytes(mut r) => {
                if r.remaining() % 4 != 0 {
                    return Err(Error::Onnx {
                        reason: format!(
                            "{msg} field {}: packed floats of {} bytes (not a multiple of 4)",
                            self.number,
                            r.remaining()
                        ),
                        offset: self.offset,
                    });
                }
                out.extend(
                    r.take_rest()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            _ => return Err(self.wrong_type(msg, "fixed32 or packed fixed32")),
        }
        Ok(())
    }
}
