//! The values a pickle can build: Python scalars and containers (as arena ids), the whitelisted
//! callables, and the storages and tensors that PyTorch checkpoints describe.

use super::Id;

/// Element type of a PyTorch storage (`torch.FloatStorage` → `F32`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `torch.DoubleStorage`
    F64,
    /// `torch.FloatStorage`
    F32,
    /// `torch.HalfStorage`
    F16,
    /// `torch.BFloat16Storage`
    BF16,
    /// `torch.LongStorage`
    I64,
    /// `torch.IntStorage`
    I32,
    /// `torch.ShortStorage`
    I16,
    /// `torch.CharStorage`
    I8,
    /// `torch.ByteStorage`
    U8,
    /// `torch.BoolStorage`
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// Short name (`f32`, `u8`, ...), used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }

    /// The dtype of a `torch.<name>` storage class, if it is one.
    pub fn from_storage_class(name: &str) -> Option<DType> {
        Some(match name {
            "DoubleStorage" => DType::F64,
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel[, view])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// The storage's key (a file name in zip checkpoints, a number in legacy ones).
    pub key: String,
    /// Element type.
    pub dtype: DType,
    /// Number of elements the pickle declares.
    pub numel: u64,
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`:
/// element `(i0, i1, ...)` is storage element `offset + Σ i_k·stride_k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage it views.
    pub storage: StorageRef,
    /// Offset in elements.
    pub offset: u64,
    /// Shape.
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub stride: Vec<usize>,
}

/// A whitelisted global, interpreted by `REDUCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callable {
    /// `collections.OrderedDict`: `OrderedDict()` → empty dict.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor` (pre-1.0 checkpoints)
    RebuildTensor,
    /// `torch._utils._rebuild_parameter`: returns its tensor argument.
    RebuildParameter,
}

/// One value in the arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer (at most 128 bits).
    Int(i128),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// A bytes object.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Id>),
    /// A list.
    List(Vec<Id>),
    /// A dict, in insertion order (a later equal key is a later pair).
    Dict(Vec<(Id, Id)>),
    /// A whitelisted function or class.
    Callable(Callable),
    /// A `torch.*Storage` class.
    StorageType(DType),
    /// A storage loaded by persistent id.
    Storage(StorageRef),
    /// A tensor.
    Tensor(TensorRef),
}

impl Value {
    /// The Python-ish type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Callable(_) => "callable",
            Value::StorageType(_) => "storage class",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}
