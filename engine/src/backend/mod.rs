//! The backend layer: one trait, [`Backend`], with one method per kernel family, implemented
//! once for the CPU ([`cpu::Cpu`], `kernels::cpu` and the CPU conv path in
//! `ops/conv_algo.rs`) and once for CUDA ([`cuda::Cuda`], `kernels::cuda`). Ops validate their
//! arguments, make one backend call and record a backward that calls named backend methods;
//! they never look at the device. The device switch is [`backend_of`] (and [`to_device`], the
//! one op that spans two devices). The trait has no default methods: a method missing on one
//! device does not compile.
//!
//! Methods take the public op's name (`op`) for their error messages, and tensors of one dtype
//! and device (ops check that first with `check_same`); dtype dispatch (`dispatch_float!`)
//! happens inside each implementation. Results are new contiguous tensors; inputs may be
//! strided views (each method reads them through their strides or gathers them).

pub(crate) mod cpu;
mod cpu_index;
mod cpu_layers;
pub(crate) mod cuda;
mod cuda_index;
mod cuda_layers;
mod index;
mod layers;

pub(crate) use index::{Axis3, IndexBackend};
pub(crate) use layers::{LayerBackend, NormArgs};

use crate::ops::conv_algo::{ConvConfig, Prepared};
use crate::ops::optim::AdamParams;
use crate::ops::sort::{IndexData, Indices};
use crate::profile::{self, Span};
use crate::{DType, Device, Result, Storage, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::cpu::pool2d::Pool2dParams;
use kernels::cuda::CudaSlice;
use kernels::{BinaryOp, UnaryOp};

/// The backend that computes on `t`'s device, for one op: the one place ops branch on the
/// device. The handle also times the op while a profile is collected ([`crate::profile`]:
/// from here to the handle's drop, keyed by `op` and `t`'s shape).
/// Errors: `DeviceUnavailable` when `t`'s GPU cannot be opened.
pub(crate) fn backend_of(op: &'static str, t: &Tensor) -> Result<BackendRef> {
    let span = Span::open(op, || profile::dims(t.shape()));
    open(op, t, span)
}

/// [`backend_of`] for a convolution on `t` with weight `w`: the profile row names both shapes.
pub(crate) fn backend_of_conv(op: &'static str, t: &Tensor, w: &Tensor) -> Result<BackendRef> {
    let span = Span::open(op, || {
        format!(
            "{} * {}",
            profile::dims(t.shape()),
            profile::dims(w.shape())
        )
    });
    open(op, t, span)
}

fn open(op: &'static str, t: &Tensor, span: Span) -> Result<BackendRef> {
    let be: Box<dyn Backend> = match t.device() {
        Device::Cpu => Box::new(cpu::Cpu::host()),
        Device::Cuda(n) => Box::new(cuda::Cuda::open(op, n)?),
    };
    Ok(BackendRef { be, _span: span })
}

/// [`backend_of`]'s handle: the backend (through `Deref`) and the op's profile span.
pub(crate) struct BackendRef {
    be: Box<dyn Backend>,
    _span: Span,
}

impl std::ops::Deref for BackendRef {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.be
    }
}

/// `t` (not on `device`) as a new contiguous tensor on `device`: host → GPU, GPU → host, or
/// GPU → GPU through the host (peer copies are not worth the complexity here).
pub(crate) fn to_device(op: &'static str, t: &Tensor, device: Device) -> Result<Tensor> {
    match (t.device(), device) {
        (_, Device::Cpu) => cuda::to_host(op, t),
        (Device::Cpu, Device::Cuda(n)) => cuda::Cuda::open(op, n)?.upload(op, t),
        (Device::Cuda(_), Device::Cuda(n)) => {
            cuda::Cuda::open(op, n)?.upload(op, &cuda::to_host(op, t)?)
        }
    }
}

/// `idx`'s values on the host.
pub(crate) fn indices_to_host(op: &'static str, idx: &Indices) -> Result<Vec<u32>> {
    match &*idx.data {
        IndexData::Host(v) => Ok(v.clone()),
        IndexData::Device(Device::Cuda(n), s) => {
            cuda::Cuda::open(op, *n)?.download_indices(op, s, idx.shape().iter().product())
        }
        IndexData::Device(Device::Cpu, _) => unreachable!("host indices are IndexData::Host"),
    }
}

/// `idx`'s values on `device` (a copy; through the host between two GPUs).
pub(crate) fn indices_to_device(
    op: &'static str,
    idx: &Indices,
    device: Device,
) -> Result<IndexData> {
    let host = indices_to_host(op, idx)?;
    match device {
        Device::Cpu => Ok(IndexData::Host(host)),
        Device::Cuda(n) => Ok(IndexData::Device(
            device,
            cuda::Cuda::open(op, n)?.upload_indices(op, &host)?,
        )),
    }
}

/// Max pooling's argmax (flat index into each input plane per output), on the device of the
/// pooling that made it (a GPU's: with that GPU).
pub(crate) enum Argmax {
    Host(Vec<u32>),
    Device(Device, CudaSlice<u32>),
}

/// A convolution's geometry and how it runs: `cfg` (the CPU's algorithm; the precision, on
/// both) and the frozen layer's prepared weight transforms, if any (CPU only).
#[derive(Clone, Copy)]
pub(crate) struct ConvCall<'a> {
    pub p: &'a Conv2dParams,
    pub cfg: ConvConfig,
    pub prepared: Option<&'a Prepared>,
}

/// One method per kernel family; see the module docs for the conventions. The layer kernels
/// of the feed-forward networks are the supertrait [`LayerBackend`]; patch extraction and
/// index selection are [`IndexBackend`].
pub(crate) trait Backend: LayerBackend + IndexBackend {
    /// `f(x)` elementwise, shape of `x`.
    fn unary(&self, op: &'static str, f: UnaryOp, x: &Tensor) -> Result<Tensor>;
    /// `f(a, b)` elementwise, `a` and `b` broadcast (NumPy) to `shape`.
    fn binary(
        &self,
        op: &'static str,
        f: BinaryOp,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor>;
    /// `x = f(x)` in place over the contiguous values `x` (owned by the caller alone) where
    /// this device can; `Ok(false)`, `x` untouched, where not (the caller then maps out of
    /// place).
    fn unary_in_place(&self, _op: &'static str, _f: UnaryOp, _x: &mut Storage) -> Result<bool> {
        Ok(false)
    }
    /// `acc += g` in place, where `acc` (contiguous, `g`'s shape and dtype, owned by the
    /// caller alone) can be written on this device; `Ok(false)`, `acc` untouched, where not
    /// (the caller then adds out of place).
    fn add_assign(&self, _op: &'static str, _acc: &mut Storage, _g: &Tensor) -> Result<bool> {
        Ok(false)
    }
    /// A contiguous copy of the (strided) view `x`.
    fn contiguous(&self, op: &'static str, x: &Tensor) -> Result<Tensor>;
    /// Zeros of the contiguous `shape` with `src` written into the view of it that has
    /// `src`'s shape, `shape`'s row-major strides and starts at element `offset` (the
    /// adjoint of `narrow`).
    fn embed(
        &self,
        op: &'static str,
        src: &Tensor,
        shape: &[usize],
        offset: usize,
    ) -> Result<Tensor>;
    /// Σ of all elements, shape `[]`.
    fn sum_all(&self, op: &'static str, x: &Tensor) -> Result<Tensor>;
    /// Σ along `axis`, as `out_shape` (the axis kept as 1 or removed).
    fn sum_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        axis: usize,
        out_shape: &[usize],
    ) -> Result<Tensor>;
    /// Σᵢ aᵢ·bᵢ accumulated in f64, deterministic, as a host value.
    fn dot(&self, op: &'static str, a: &Tensor, b: &Tensor) -> Result<f64>;
    /// `batch` products of the last two dims of `a` (m×k) and `b` (k×n), read through their
    /// strides (a 2-D operand is shared by every batch); `out_shape` holds batch·m·n elements.
    fn matmul(
        &self,
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        batch: usize,
        out_shape: &[usize],
    ) -> Result<Tensor>;
    /// conv2d forward N×C×H×W → N×O×OH×OW, with bias [O], then ReLU when `relu`.
    fn conv2d(
        &self,
        op: &'static str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        c: ConvCall<'_>,
        relu: bool,
    ) -> Result<Tensor>;
    /// conv2d's input gradient from `g` (N×O×OH×OW); with `relu_out` (the output of a fused
    /// conv + ReLU) the gradient goes through the ReLU mask first.
    fn conv2d_backward_input(
        &self,
        op: &'static str,
        g: &Tensor,
        w: &Tensor,
        c: ConvCall<'_>,
        relu_out: Option<&Tensor>,
    ) -> Result<Tensor>;
    /// conv2d's weight gradient (O×C×KH×KW) from the input `x` and `g`.
    fn conv2d_backward_weight(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor>;
    /// conv2d's bias gradient [O] from `g`.
    fn conv2d_backward_bias(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor>;
    /// Max pooling N×C×OH×OW, with the argmax when `keep_argmax`.
    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        p: &Pool2dParams,
        keep_argmax: bool,
    ) -> Result<(Tensor, Option<Argmax>)>;
    /// Max pooling's input gradient: each output gradient routed to its argmax.
    fn max_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Pool2dParams,
        argmax: &Argmax,
    ) -> Result<Tensor>;
    /// Average pooling N×C×OH×OW.
    fn avg_pool2d(&self, op: &'static str, x: &Tensor, p: &Pool2dParams) -> Result<Tensor>;
    /// Average pooling's input gradient.
    fn avg_pool2d_backward(&self, op: &'static str, g: &Tensor, p: &Pool2dParams)
        -> Result<Tensor>;
    /// `scale · F Fᵀ` per batch of the N×C×HW `f`: N×C×C.
    fn gram(&self, op: &'static str, f: &Tensor, scale: f64) -> Result<Tensor>;
    /// `S · F` per batch (N×C×C times N×C×HW): the Gram backward from the symmetrised,
    /// scaled gradient `s`.
    fn gram_backward(&self, op: &'static str, s: &Tensor, f: &Tensor) -> Result<Tensor>;
    /// One Adam update: the new (parameter, m, v).
    fn adam_step(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        p: &AdamParams,
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// Each row of the last axis of `x` (`[..., L]`) sorted ascending: (values, argsort
    /// indices on `x`'s device), both of `x`'s shape. Order: `kernels::cpu::sort`.
    fn sort_last(&self, op: &'static str, x: &Tensor) -> Result<(Tensor, Indices)>;
    /// `out[.., j] = x[.., idx[.., j]]`: `x` `[..., L]`, `idx` `[..., K]` (every index < L,
    /// same device), out `[..., K]`.
    fn gather_last(&self, op: &'static str, x: &Tensor, idx: &Indices) -> Result<Tensor>;
    /// The adjoint of `gather_last`: zeros `[..., len]` with `g[.., j]` added at `idx[.., j]`
    /// (`g` and `idx` `[..., K]`).
    fn scatter_add_last(
        &self,
        op: &'static str,
        g: &Tensor,
        idx: &Indices,
        len: usize,
    ) -> Result<Tensor>;
    /// Eigenvalues `[n]` (ascending) and eigenvectors `[n, n]` (columns) of the symmetric part
    /// of the n×n `a`, computed in f64, returned in `a`'s dtype and device.
    fn sym_eig(&self, op: &'static str, a: &Tensor) -> Result<(Tensor, Tensor)>;
    /// `x` converted to the float `dtype` (not its own).
    fn cast(&self, op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor>;
}
