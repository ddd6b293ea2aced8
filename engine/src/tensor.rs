//! `Tensor`: shape + strides + offset over shared, immutable storage, with autodiff bookkeeping.

use crate::autograd::{self, Node};
use crate::storage::{Element, Storage};
use crate::{dispatch_float, DType, Device, EngineError, Result};
use kernels::Float as _;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};

/// An n-dimensional array (images NCHW, conv weights OIHW). Cheap to clone: clones share the
/// storage and the autodiff node. Ops return new tensors; storage that anyone can see is never
/// mutated in place (the one in-place write, `add_grad`, is to a gradient sum the tape alone holds).
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) storage: Arc<Storage>,
    pub(crate) shape: Vec<usize>,
    pub(crate) strides: Vec<usize>,
    pub(crate) offset: usize,
    pub(crate) requires_grad: bool,
    /// The op that produced this tensor, when it was recorded on the tape (None for leaves).
    pub(crate) node: Option<Arc<Node>>,
    /// Accumulated gradient (leaves that require grad only).
    pub(crate) grad: Mutex<Option<Tensor>>,
}

/// Row-major (C-order) strides of a shape, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

impl Tensor {
    pub(crate) fn from_parts(
        storage: Arc<Storage>,
        shape: Vec<usize>,
        strides: Vec<usize>,
        offset: usize,
        node: Option<Arc<Node>>,
    ) -> Tensor {
        Tensor(Arc::new(Inner {
            storage,
            requires_grad: node.is_some(),
            shape,
            strides,
            offset,
            node,
            grad: Mutex::new(None),
        }))
    }

    /// A contiguous tensor over `storage` (no grad).
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        let storage = Arc::new(Storage::new(storage));
        Tensor::from_parts(storage, shape.to_vec(), contiguous_strides(shape), 0, None)
    }

    /// A tensor owning `data` (row-major) with the given shape.
    ///
    /// Errors: `LengthMismatch` when `data.len()` is not the product of `shape`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let expected = shape.iter().product::<usize>();
        if data.len() != expected {
            return Err(EngineError::LengthMismatch {
                op: "from_vec",
                len: data.len(),
                shape: shape.to_vec(),
                expected,
            });
        }
        Ok(Tensor::from_storage(T::into_storage(data), shape))
    }

    /// Copy of `data` as a tensor of the given shape (see [`Tensor::from_vec`]).
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-dimensional f32 tensor.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_storage(Storage::F32(vec![v]), &[])
    }

    /// A tensor filled with `value` (f32 or f64).
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let n = shape.iter().product::<usize>();
        dispatch_float!("full", dtype, T => Tensor::from_vec(vec![T::from_f64(value); n], shape))
    }

    /// Zeros of the given shape and dtype.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones of the given shape and dtype.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Gaussian samples N(0, std²), reproducible from `seed`.
    pub fn randn(shape: &[usize], std: f64, seed: u64, dtype: DType) -> Result<Tensor> {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal =
            rand_distr::Normal::new(0.0, std).map_err(|e| EngineError::InvalidArgument {
                op: "randn",
                msg: e.to_string(),
                shape: shape.to_vec(),
            })?;
        let n = shape.iter().product::<usize>();
        let v: Vec<f64> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        Tensor::from_vec(v, shape)?.cast(dtype)
    }

    /// Uniform samples in [lo, hi), reproducible from `seed`.
    pub fn rand_uniform(
        shape: &[usize],
        lo: f64,
        hi: f64,
        seed: u64,
        dtype: DType,
    ) -> Result<Tensor> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = shape.iter().product::<usize>();
        let v: Vec<f64> = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
        Tensor::from_vec(v, shape)?.cast(dtype)
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.iter().product()
    }
    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        &self.0.strides
    }
    pub(crate) fn offset(&self) -> usize {
        self.0.offset
    }
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    /// True when the elements are laid out row-major without gaps from offset 0.
    pub fn is_contiguous(&self) -> bool {
        self.0.offset == 0
            && self.0.storage.len() == self.numel()
            && self
                .0
                .shape
                .iter()
                .zip(&self.0.strides)
                .zip(contiguous_strides(&self.0.shape))
                .all(|((&d, &s), c)| d == 1 || s == c)
    }

    /// Whether gradients flow to (or through) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// This tensor as a new leaf that requires grad (shares storage; records no history).
    pub fn requires_grad_(&self) -> Tensor {
        Tensor(Arc::new(Inner {
            storage: self.0.storage.clone(),
            shape: self.0.shape.clone(),
            strides: self.0.strides.clone(),
            offset: self.0.offset,
            requires_grad: true,
            node: None,
            grad: Mutex::new(None),
        }))
    }

    /// This tensor cut from the graph: same storage, no grad, no history.
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(
            self.0.storage.clone(),
            self.0.shape.clone(),
            self.0.strides.clone(),
            self.0.offset,
            None,
        )
    }

    /// The gradient accumulated by `backward()` into this leaf, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forget the accumulated gradient.
    pub fn zero_grad(&self) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(crate) fn set_grad(&self, g: Tensor) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = Some(g);
    }

    /// Fill the gradients of every leaf this scalar depends on: ∂self/∂leaf (see [`crate::autograd`]).
    pub fn backward(&self) -> Result<()> {
        autograd::backward(self)
    }

    /// The elements, row-major, as `T` (which must be this tensor's dtype). For a CUDA tensor
    /// this is an explicit device → host copy (it waits for the GPU).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        Ok(self.host_data::<T>("to_vec")?.into_owned())
    }

    /// The elements converted to f32 (copied from the GPU for a CUDA tensor).
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        dispatch_float!("to_vec_f32", self.dtype(), T => Ok(self
            .host_data::<T>("to_vec_f32")?
            .iter()
            .map(|v| v.to_f64() as f32)
            .collect()))
    }

    /// The elements converted to f64 (copied from the GPU for a CUDA tensor).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        dispatch_float!("to_vec_f64", self.dtype(), T => Ok(self
            .host_data::<T>("to_vec_f64")?
            .iter()
            .map(|v| v.to_f64())
            .collect()))
    }

    /// The elements in row-major order on the host: [`Tensor::contiguous_data`] for a CPU
    /// tensor, a device → host copy for a CUDA one. Only the explicit host-access methods
    /// (`to_vec*`, `item`, `to_device`, `Debug`) use it.
    fn host_data<T: Element>(&self, op: &'static str) -> Result<Cow<'_, [T]>> {
        let Device::Cuda(n) = self.device() else {
            return self.contiguous_data::<T>(op);
        };
        let dev = kernels::cuda::device(n).map_err(|e| EngineError::from_cuda(op, n, e))?;
        let data = crate::backend::cuda::contiguous::<T>(op, &dev, self)?;
        let v = dev
            .dtoh(&data, self.numel())
            .map_err(|e| EngineError::from_cuda(op, n, e))?;
        Ok(Cow::Owned(v))
    }

    /// Error for host access to a CUDA tensor on a path that must not copy implicitly.
    fn not_on_host(&self, op: &'static str) -> EngineError {
        EngineError::Cuda {
            op,
            device: self.device(),
            msg: "internal: host access to a CUDA tensor (copy it with to_device(Device::Cpu))"
                .into(),
        }
    }

    /// The value of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(EngineError::InvalidArgument {
                op: "item",
                msg: "needs exactly one element".into(),
                shape: self.shape().to_vec(),
            });
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// The elements in row-major order: borrowed when contiguous, gathered otherwise.
    pub(crate) fn contiguous_data<T: Element>(&self, op: &'static str) -> Result<Cow<'_, [T]>> {
        if self.device() != Device::Cpu {
            return Err(self.not_on_host(op));
        }
        let all = T::slice(&self.0.storage).ok_or(EngineError::DTypeMismatch {
            op,
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })?;
        if self.is_contiguous() {
            return Ok(Cow::Borrowed(all));
        }
        let mut out = vec![T::ZERO; self.numel()];
        kernels::cpu::elementwise::copy_strided(
            all,
            self.shape(),
            self.strides(),
            self.offset(),
            &mut out,
        );
        Ok(Cow::Owned(out))
    }

    /// The whole storage slice (for strided kernels), with this view's strides and offset.
    pub(crate) fn storage_slice<T: Element>(&self, op: &'static str) -> Result<&[T]> {
        if self.device() != Device::Cpu {
            return Err(self.not_on_host(op));
        }
        T::slice(&self.0.storage).ok_or(EngineError::DTypeMismatch {
            op,
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({:?}, {:?}, {}",
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        if self.numel() <= 8 {
            if let Ok(v) = self.to_vec_f64() {
                write!(f, ", {v:?}")?;
            }
        }
        write!(f, ")")
    }
}
