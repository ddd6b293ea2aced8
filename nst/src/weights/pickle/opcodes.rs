//! The pickle interpreter's opcode loop: one arm per opcode `torch.save` emits; anything else
//! is `Error::PickleOpcode` naming it and its offset.

use super::{Machine, Pickle, Value, MAX_STACK};
use crate::error::{Error, Result};

impl Machine<'_> {
    pub(super) fn run(mut self) -> Result<Pickle> {
        loop {
            self.op_at = self.pos;
            let op = self.u8("opcode")?;
            match op {
                0x80 => {
                    let proto = self.u8("PROTO")?;
                    if proto > 5 {
                        return Err(self.err(format!("protocol {proto}")));
                    }
                }
                0x95 => {
                    self.le::<8>("FRAME")?; // framing is advisory; opcodes are read in order anyway
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        nodes: self.nodes,
                        root,
                        end: self.pos,
                    });
                }
                b'(' => {
                    if self.marks.len() >= MAX_STACK {
                        return Err(self.err(format!("more than {MAX_STACK} MARKs")));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.push(id)?;
                }
                b'N' => self.push_new(Value::None)?,
                0x88 => self.push_new(Value::Bool(true))?,
                0x89 => self.push_new(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le::<4>("BININT")?);
                    self.push_new(Value::Int(v as i128))?;
                }
                b'K' => {
                    let v = self.u8("BININT1")?;
                    self.push_new(Value::Int(v as i128))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le::<2>("BININT2")?);
                    self.push_new(Value::Int(v as i128))?;
                }
                0x8a => {
                    let n = self.u8("LONG1")? as u64;
                    let v = self.long(n)?;
                    self.push_new(v)?;
                }
                0x8b => {
                    let n = u32::from_le_bytes(self.le::<4>("LONG4")?) as u64;
                    let v = self.long(n)?;
                    self.push_new(v)?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le::<8>("BINFLOAT")?);
                    self.push_new(Value::Float(v))?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le::<4>("BINUNICODE")?) as u64;
                    let v = self.string(n, "BINUNICODE")?;
                    self.push_new(v)?;
                }
                0x8c => {
                    let n = self.u8("SHORT_BINUNICODE")? as u64;
                    let v = self.string(n, "SHORT_BINUNICODE")?;
                    self.push_new(v)?;
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le::<8>("BINUNICODE8")?);
                    let v = self.string(n, "BINUNICODE8")?;
                    self.push_new(v)?;
                }
                b'B' | b'C' => {
                    let n = if op == b'B' {
                        u32::from_le_bytes(self.le::<4>("BINBYTES")?) as u64
                    } else {
                        self.u8("SHORT_BINBYTES")? as u64
                    };
                    let v = self.take(n, "BINBYTES")?.to_vec();
                    self.push_new(Value::Bytes(v))?;
                }
                b')' => self.push_new(Value::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_new(Value::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_new(Value::Tuple(items))?;
                }
                b']' => self.push_new(Value::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_new(Value::List(items))?;
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?;
                }
                b'}' => self.push_new(Value::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = self.alloc(Value::Dict(Vec::new()))?;
                    self.set_items(dict, items)?;
                    self.push(dict)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b'q' => {
                    let i = self.u8("BINPUT")? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le::<4>("LONG_BINPUT")?);
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo full"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8("BINGET")? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le::<4>("LONG_BINGET")?);
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line("GLOBAL module")?;
                    let name = self.line("GLOBAL name")?;
                    let v = self.global(&module, &name)?;
                    self.push_new(v)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (&self.nodes[module], &self.nodes[name])
                    else {
                        return Err(self.err("STACK_GLOBAL with non-str operands"));
                    };
                    let (m, n) = (m.clone(), n.clone());
                    let v = self.global(&m, &n)?;
                    self.push_new(v)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let id = self.reduce(callable, args)?;
                    self.push(id)?;
                }
                b'b' => {
                    // BUILD: only an OrderedDict's `__dict__` (torch's `_metadata`), which we drop.
                    let _state = self.pop()?;
                    let target = self.top()?;
                    if !matches!(self.nodes[target], Value::Dict(_)) {
                        let kind = self.nodes[target].kind();
                        return Err(self.err(format!("BUILD on a {kind}")));
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.push_new(v)?;
                }
                _ => {
                    return Err(Error::PickleOpcode {
                        opcode: op,
                        offset: self.op_at as u64,
                    })
                }
            }
        }
    }
}
