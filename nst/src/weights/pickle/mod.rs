//! A safe reader for the pickles inside PyTorch checkpoints: it never imports or calls anything.
//!
//! Only the opcodes that `torch.save` emits (protocol 2, plus a few protocol 3/4 ones that are
//! harmless) are understood, and only a whitelist of globals is accepted: `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor{,_v2}`, `torch._utils._rebuild_parameter` and the
//! `torch.*Storage` classes. Each is *interpreted* (an `OrderedDict()` becomes an empty dict, a
//! `_rebuild_tensor_v2(...)` becomes a [`TensorRef`]), never executed. Anything else is an error
//! naming the opcode or the global.
//!
//! Values live in an arena ([`Pickle::get`] by [`Id`]) so that shared references (`BINGET`),
//! in-place mutation (`APPEND`, `SETITEMS`) and even cycles cost nothing and drop without
//! recursion. Limits: [`MAX_STACK`], [`MAX_MEMO`], [`MAX_NODES`]; every length is checked
//! against the bytes left before anything is allocated.

use std::collections::HashMap;

use crate::error::{Error, Result};

mod opcodes;
mod value;
pub use value::{Callable, DType, StorageRef, TensorRef, Value};

/// Most values the pickle stack may hold at once.
pub const MAX_STACK: usize = 1 << 16;
/// Most memo entries.
pub const MAX_MEMO: usize = 1 << 20;
/// Most values a pickle may create.
pub const MAX_NODES: usize = 1 << 20;
/// Most dimensions of a tensor.
pub const MAX_NDIM: usize = 16;
/// Longest storage key (real ones are short numbers).
pub const MAX_KEY_LEN: usize = 256;

/// Index of a value in a [`Pickle`]'s arena.
pub type Id = usize;

/// A parsed pickle: its arena, the value `STOP` returned, and where the pickle ended.
#[derive(Debug)]
pub struct Pickle {
    nodes: Vec<Value>,
    /// The returned value.
    pub root: Id,
    /// Offset just past the `STOP` opcode (pickles are concatenated in legacy checkpoints).
    pub end: usize,
}

impl Pickle {
    /// Parses the pickle starting at `data[start..]`. Never executes code; see the module docs
    /// for the opcodes and globals accepted. Errors: [`Error::Truncated`], [`Error::PickleOpcode`],
    /// [`Error::PickleGlobal`], [`Error::Pickle`].
    pub fn parse(data: &[u8], start: usize) -> Result<Pickle> {
        Machine::new(data, start).run()
    }

    /// The value with this id. Ids come from this pickle, so they are always in range.
    pub fn get(&self, id: Id) -> &Value {
        &self.nodes[id]
    }

    /// Number of values created.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no value was created (never the case for a parsed pickle).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The string at `id`, if it is one.
    pub fn as_str(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Value>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    op_at: usize,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        Machine {
            data,
            pos: start,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            op_at: start,
        }
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Pickle {
            reason: reason.into(),
            offset: self.op_at as u64,
        }
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let available = self.data.len().saturating_sub(self.pos);
        if n > available as u64 {
            return Err(Error::Truncated {
                what: format!("pickle {what}"),
                offset: self.pos as u64,
                needed: n,
                available: available as u64,
            });
        }
        let n = n as usize;
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn le<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn alloc(&mut self, v: Value) -> Result<Id> {
        if self.nodes.len() >= MAX_NODES {
            return Err(self.err(format!("more than {MAX_NODES} values")));
        }
        self.nodes.push(v);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, id: Id) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(self.err(format!("stack deeper than {MAX_STACK}")));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, v: Value) -> Result<()> {
        let id = self.alloc(v)?;
        self.push(id)
    }

    fn pop(&mut self) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("pop from an empty stack"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("empty stack"));
        }
        Ok(*self.stack.last().expect("checked above"))
    }

    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.err("no MARK on the stack"));
        };
        Ok(self.stack.split_off(mark))
    }

    fn string(&mut self, n: u64, what: &str) -> Result<Value> {
        let bytes = self.take(n, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => Err(self.err(format!("{what}: invalid UTF-8"))),
        }
    }

    fn long(&mut self, n: u64) -> Result<Value> {
        let bytes = self.take(n, "LONG")?;
        if bytes.len() > 16 {
            return Err(self.err(format!("integer of {} bytes (at most 16)", bytes.len())));
        }
        let mut buf = [0u8; 16];
        if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            buf = [0xff; 16];
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Value::Int(i128::from_le_bytes(buf)))
    }

    fn memo_put(&mut self, index: u32) -> Result<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(self.err(format!("more than {MAX_MEMO} memo entries")));
        }
        self.memo.insert(index, id);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<()> {
        match self.memo.get(&index) {
            Some(&id) => self.push(id),
            None => Err(self.err(format!("memo entry {index} is not defined"))),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Value> {
        let v = match (module, name) {
            ("collections", "OrderedDict") => Value::Callable(Callable::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Value::Callable(Callable::RebuildTensorV2),
            ("torch._utils", "_rebuild_tensor") => Value::Callable(Callable::RebuildTensor),
            ("torch._utils", "_rebuild_parameter") => Value::Callable(Callable::RebuildParameter),
            ("torch", class) if DType::from_storage_class(class).is_some() => {
                Value::StorageType(DType::from_storage_class(class).expect("matched"))
            }
            _ => {
                return Err(Error::PickleGlobal {
                    module: module.chars().take(200).collect(),
                    name: name.chars().take(200).collect(),
                    offset: self.op_at as u64,
                })
            }
        };
        Ok(v)
    }

    fn line(&mut self, what: &str) -> Result<String> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let limit = rest.len().min(512);
        let Some(n) = rest[..limit].iter().position(|&b| b == b'\n') else {
            return Err(self.err(format!("{what}: no newline within {limit} bytes")));
        };
        let bytes = self.take(n as u64 + 1, what)?;
        match std::str::from_utf8(&bytes[..n]) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.err(format!("{what}: invalid UTF-8"))),
        }
    }

    fn int_arg(&self, id: Id, what: &str) -> Result<i128> {
        match &self.nodes[id] {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(*b as i128),
            other => Err(self.err(format!("{what}: expected int, found {}", other.kind()))),
        }
    }

    fn usize_arg(&self, id: Id, what: &str) -> Result<usize> {
        let i = self.int_arg(id, what)?;
        usize::try_from(i).map_err(|_| self.err(format!("{what}: {i} out of range")))
    }

    fn usize_tuple(&self, id: Id, what: &str) -> Result<Vec<usize>> {
        let Value::Tuple(items) = &self.nodes[id] else {
            return Err(self.err(format!(
                "{what}: expected tuple, found {}",
                self.nodes[id].kind()
            )));
        };
        if items.len() > MAX_NDIM {
            return Err(self.err(format!(
                "{what}: {} dimensions (at most {MAX_NDIM})",
                items.len()
            )));
        }
        items.iter().map(|&i| self.usize_arg(i, what)).collect()
    }

    fn persistent_load(&mut self, pid: Id) -> Result<Value> {
        let Value::Tuple(items) = &self.nodes[pid] else {
            return Err(self.err(format!(
                "persistent id is a {}, expected a tuple",
                self.nodes[pid].kind()
            )));
        };
        // Check the length before copying: a shared huge tuple must not cost O(n) per use.
        if items.len() > 6 {
            return Err(self.err(format!("persistent id of {} items", items.len())));
        }
        let items = items.clone();
        match items.first().map(|&i| &self.nodes[i]) {
            Some(Value::Str(s)) if s == "storage" => {}
            Some(Value::Str(s)) => {
                let s: String = s.chars().take(100).collect();
                return Err(self.err(format!("persistent id of type {s:?} (only 'storage')")));
            }
            _ => return Err(self.err("persistent id without a type name")),
        }
        // ('storage', class, key, location, numel) in zip checkpoints; legacy ones add view_metadata.
        if !(items.len() == 5 || items.len() == 6) {
            return Err(self.err(format!("storage persistent id of {} items", items.len())));
        }
        let Value::StorageType(dtype) = self.nodes[items[1]] else {
            return Err(self.err(format!(
                "storage class is a {}",
                self.nodes[items[1]].kind()
            )));
        };
        let Value::Str(key) = &self.nodes[items[2]] else {
            return Err(self.err("storage key is not a str"));
        };
        if key.len() > MAX_KEY_LEN {
            return Err(self.err(format!("storage key of {} bytes", key.len())));
        }
        let key = key.clone();
        let numel = self.int_arg(items[4], "storage size")?;
        let numel = u64::try_from(numel)
            .map_err(|_| self.err(format!("storage size {numel} out of range")))?;
        if items.len() == 6 && self.nodes[items[5]] != Value::None {
            return Err(self.err(format!("storage {key:?} is a view (unsupported)")));
        }
        Ok(Value::Storage(StorageRef { key, dtype, numel }))
    }

    fn reduce(&mut self, callable: Id, args: Id) -> Result<Id> {
        let Value::Callable(c) = self.nodes[callable] else {
            return Err(self.err(format!(
                "REDUCE on a {}, not a whitelisted callable",
                self.nodes[callable].kind()
            )));
        };
        let Value::Tuple(args) = &self.nodes[args] else {
            return Err(self.err("REDUCE arguments are not a tuple"));
        };
        if args.len() > 7 {
            return Err(self.err(format!("REDUCE with {} arguments", args.len())));
        }
        let args = args.clone();
        match c {
            Callable::OrderedDict => {
                if !args.is_empty() {
                    return Err(self.err("OrderedDict() with arguments"));
                }
                self.alloc(Value::Dict(Vec::new()))
            }
            Callable::RebuildParameter => {
                if args.len() != 3 {
                    return Err(
                        self.err(format!("_rebuild_parameter with {} arguments", args.len()))
                    );
                }
                match self.nodes[args[0]] {
                    Value::Tensor(_) => Ok(args[0]),
                    ref other => Err(self.err(format!("_rebuild_parameter of a {}", other.kind()))),
                }
            }
            Callable::RebuildTensor | Callable::RebuildTensorV2 => {
                let ok = if c == Callable::RebuildTensor {
                    args.len() == 4
                } else {
                    args.len() == 6 || args.len() == 7
                };
                if !ok {
                    return Err(self.err(format!("_rebuild_tensor with {} arguments", args.len())));
                }
                let Value::Storage(storage) = &self.nodes[args[0]] else {
                    return Err(self.err(format!(
                        "_rebuild_tensor of a {}, not a storage",
                        self.nodes[args[0]].kind()
                    )));
                };
                let storage = storage.clone();
                let offset = self.usize_arg(args[1], "tensor offset")? as u64;
                let shape = self.usize_tuple(args[2], "tensor size")?;
                let stride = self.usize_tuple(args[3], "tensor stride")?;
                if shape.len() != stride.len() {
                    return Err(self.err(format!(
                        "tensor size {shape:?} and stride {stride:?} differ in rank"
                    )));
                }
                self.alloc(Value::Tensor(TensorRef {
                    storage,
                    offset,
                    shape,
                    stride,
                }))
            }
        }
    }

    fn set_items(&mut self, dict: Id, items: Vec<Id>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of items"));
        }
        let Value::Dict(pairs) = &mut self.nodes[dict] else {
            let kind = self.nodes[dict].kind();
            return Err(self.err(format!("SETITEM(S) on a {kind}")));
        };
        pairs.extend(items.chunks_exact(2).map(|c| (c[0], c[1])));
        Ok(())
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> Result<()> {
        let Value::List(v) = &mut self.nodes[list] else {
            let kind = self.nodes[list].kind();
            return Err(self.err(format!("APPEND(S) on a {kind}")));
        };
        v.extend(items);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
