//! One `CudaDevice` per GPU: context, stream, cuBLAS handle, loaded modules; created on first
//! use and kept for the life of the process.

use super::nvrtc::{self, Module};
use super::{
    cublas_present, device_count, device_info, no_panic, nvrtc_present, CudaBuffer, CudaElem,
    CudaError, DeviceInfo, CUBLAS_HINT, NVRTC_HINT,
};
use cudarc::cublas::CudaBlas;
use cudarc::driver::sys::CUresult;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr,
    DriverError, ValidAsZeroBits,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// A GPU ready for work: all its kernels and copies run in order on one stream, so no event
/// tracking is needed between buffers (cudarc's is turned off).
pub struct CudaDevice {
    index: usize,
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: OnceLock<Result<Mutex<CudaBlas>, CudaError>>,
    modules: Mutex<HashMap<Module, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice(cuda:{}, {})", self.index, self.info.name)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The device `cuda:index`, created on first call (a context on the device's primary context
/// and a stream). Errors: `NoDriver`, `NoDevice`, `MissingLibrary` (libnvrtc), `Driver`.
pub fn device(index: usize) -> Result<Arc<CudaDevice>, CudaError> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    let map = DEVICES.get_or_init(Default::default);
    let mut map = lock(map);
    if let Some(d) = map.get(&index) {
        return Ok(d.clone());
    }
    let d = Arc::new(CudaDevice::create(index)?);
    map.insert(index, d.clone());
    Ok(d)
}

impl CudaDevice {
    fn create(index: usize) -> Result<CudaDevice, CudaError> {
        let count = device_count()?;
        if index >= count {
            return Err(CudaError::NoDevice { index, count });
        }
        if !nvrtc_present() {
            return Err(CudaError::MissingLibrary {
                lib: "libnvrtc",
                hint: NVRTC_HINT,
            });
        }
        let info = device_info(index)?;
        no_panic("CudaContext::new", || {
            let err = |op| move |e: DriverError| driver_error(index, op, e);
            let ctx = CudaContext::new(index).map_err(err("cuDevicePrimaryCtxRetain"))?;
            // SAFETY: called before any allocation on this context; all work on the device is
            // ordered on the one stream created below, so cross-stream events are not needed.
            unsafe { ctx.disable_event_tracking() };
            let stream = ctx.new_stream().map_err(err("cuStreamCreate"))?;
            Ok(CudaDevice {
                index,
                info,
                ctx,
                stream,
                blas: OnceLock::new(),
                modules: Mutex::new(HashMap::new()),
                functions: Mutex::new(HashMap::new()),
            })
        })
    }

    /// `N` of `cuda:N`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// Name, compute capability, memory.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }
    /// The stream all of this device's work is ordered on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Wait for all queued work; reports asynchronous kernel faults.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(|e| self.driver_err("cuStreamSynchronize", e))
    }

    pub(crate) fn driver_err(&self, op: &'static str, e: DriverError) -> CudaError {
        driver_error(self.index, op, e)
    }

    /// The cuBLAS handle (created on first use, bound to this device's stream) with this
    /// device's context made current on the calling thread.
    pub(crate) fn blas(&self) -> Result<MutexGuard<'_, CudaBlas>, CudaError> {
        let blas = self.blas.get_or_init(|| {
            if !cublas_present() {
                return Err(CudaError::MissingLibrary {
                    lib: "libcublas",
                    hint: CUBLAS_HINT,
                });
            }
            no_panic("cublasCreate", || {
                CudaBlas::new(self.stream.clone())
                    .map(Mutex::new)
                    .map_err(|e| CudaError::Cublas {
                        device: self.index,
                        op: "cublasCreate",
                        msg: e.to_string(),
                    })
            })
        });
        let blas = blas.as_ref().map_err(Clone::clone)?;
        self.ctx
            .bind_to_thread()
            .map_err(|e| self.driver_err("cuCtxSetCurrent", e))?;
        Ok(lock(blas))
    }

    /// The kernel `name` of `module`, compiling (NVRTC, once per process) and loading the module
    /// on first use.
    pub(crate) fn function(&self, module: Module, name: &str) -> Result<CudaFunction, CudaError> {
        if let Some(f) = lock(&self.functions).get(name) {
            return Ok(f.clone());
        }
        let loaded = lock(&self.modules).get(&module).cloned();
        let m = match loaded {
            Some(m) => m,
            None => {
                let img = nvrtc::compile_for_device(module, self.info.compute_capability)?;
                let m = self
                    .ctx
                    .load_module(img.to_ptx())
                    .map_err(|e| self.driver_err("cuModuleLoadData", e))?;
                lock(&self.modules).entry(module).or_insert(m).clone()
            }
        };
        let f = m
            .load_function(name)
            .map_err(|e| self.driver_err("cuModuleGetFunction", e))?;
        lock(&self.functions).insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// Uninitialised device memory for `len` elements (at least one: CUDA cannot allocate zero
    /// bytes). On `CUDA_ERROR_OUT_OF_MEMORY` the stream is synchronised (freed blocks return to
    /// the pool) and the allocation tried once more. Errors: `OutOfMemory` naming the bytes.
    ///
    /// # Safety
    /// The caller must write every element before it is read.
    pub(crate) unsafe fn alloc<T: DeviceRepr>(
        &self,
        len: usize,
    ) -> Result<CudaSlice<T>, CudaError> {
        let n = len.max(1);
        let bytes = n
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(CudaError::OutOfMemory {
                device: self.index,
                bytes: usize::MAX,
                free: 0,
                total: self.info.total_memory_bytes,
            })?;
        match self.stream.alloc::<T>(n) {
            Ok(s) => Ok(s),
            Err(e) if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                self.synchronize()?;
                self.stream.alloc::<T>(n).map_err(|e| {
                    if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                        self.out_of_memory(bytes)
                    } else {
                        self.driver_err("cuMemAlloc", e)
                    }
                })
            }
            Err(e) => Err(self.driver_err("cuMemAlloc", e)),
        }
    }

    fn out_of_memory(&self, bytes: usize) -> CudaError {
        let (free, total) = self
            .ctx
            .mem_get_info()
            .unwrap_or((0, self.info.total_memory_bytes));
        CudaError::OutOfMemory {
            device: self.index,
            bytes,
            free,
            total,
        }
    }

    /// Zeroed device memory for `len` elements.
    pub fn alloc_zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        len: usize,
    ) -> Result<CudaSlice<T>, CudaError> {
        // SAFETY: zeroed right below, before anything reads it.
        let mut s = unsafe { self.alloc::<T>(len) }?;
        self.stream
            .memset_zeros(&mut s)
            .map_err(|e| self.driver_err("cuMemsetD8", e))?;
        Ok(s)
    }

    /// Copy host data to a new device buffer (the user's explicit host → device copy).
    pub fn htod<T: CudaElem>(&self, data: &[T]) -> Result<CudaBuffer, CudaError> {
        // SAFETY: fully written by the copy (an empty slice leaves the one padding element
        // unread: the buffer's length is 0).
        let mut s = unsafe { self.alloc::<T>(data.len()) }?;
        if !data.is_empty() {
            let mut dst = s.slice_mut(0..data.len());
            self.stream
                .memcpy_htod(data, &mut dst)
                .map_err(|e| self.driver_err("cuMemcpyHtoD", e))?;
        }
        Ok(T::into_buffer(s, data.len()))
    }

    /// Copy the first `len` elements of a device slice to the host (waits for the stream).
    pub fn dtoh<T: CudaElem>(&self, s: &CudaSlice<T>, len: usize) -> Result<Vec<T>, CudaError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if len > s.len() {
            return Err(CudaError::InvalidArgument {
                op: "dtoh",
                msg: format!("{len} elements asked of a buffer of {}", s.len()),
            });
        }
        let mut out = vec![T::default(); len];
        self.stream
            .memcpy_dtoh(&s.slice(0..len), &mut out)
            .map_err(|e| self.driver_err("cuMemcpyDtoH", e))?;
        self.synchronize()?;
        Ok(out)
    }

    /// Copy a whole buffer to the host.
    pub fn buffer_to_host<T: CudaElem>(&self, b: &CudaBuffer) -> Result<Vec<T>, CudaError> {
        let s = b.slice::<T>().ok_or(CudaError::InvalidArgument {
            op: "buffer_to_host",
            msg: "element type differs from the buffer's".into(),
        })?;
        self.dtoh(s, b.len())
    }

    /// Raw device address of element `offset` of `s`, for kernel arguments.
    pub(crate) fn ptr<T>(&self, s: &CudaSlice<T>, offset: usize) -> u64 {
        // Event tracking is off on this device's context, so the guard records nothing.
        let (p, _guard) = s.device_ptr(&self.stream);
        p + (offset * std::mem::size_of::<T>()) as u64
    }
}

pub(crate) fn driver_error(device: usize, op: &'static str, e: DriverError) -> CudaError {
    let name = e
        .error_name()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    let text = e
        .error_string()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    CudaError::Driver {
        device,
        op,
        msg: if text.is_empty() {
            name
        } else {
            format!("{name} ({text})")
        },
    }
}
