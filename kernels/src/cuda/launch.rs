//! Launch configurations. Every kernel is a grid-stride loop with a bounds check, so capping
//! the grid never changes results; reductions use a block of exactly `REDUCE_THREADS` threads
//! and a grid that depends only on the sizes (deterministic summation order).

use super::{CudaDevice, CudaError};
use cudarc::driver::{CudaFunction, LaunchArgs, LaunchConfig};

/// Threads per block for elementwise kernels.
pub(crate) const THREADS: u32 = 256;
/// Must equal `REDUCE_THREADS` in kernels/common.cuh (the shared-memory tree is sized by it).
pub(crate) const REDUCE_THREADS: u32 = 256;
/// Grid cap for grid-stride loops (enough blocks to fill any current GPU many times over).
const MAX_GRID: usize = 65_535;
/// Blocks of the first pass of a full sum: fixed for a given length.
pub(crate) const SUM_BLOCKS: usize = 1024;

/// One thread per element of `n` (at least one block), `THREADS` per block, grid capped.
pub(crate) fn elementwise(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(THREADS as usize).clamp(1, MAX_GRID) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `rows` rows of `per_row` positions: the grid's y walks the rows (capped; kernels stride over
/// the rest), its x the positions of a row, `THREADS` per block.
pub(crate) fn planes(rows: usize, per_row: usize) -> LaunchConfig {
    let x = per_row.div_ceil(THREADS as usize).clamp(1, MAX_GRID);
    LaunchConfig {
        grid_dim: (x as u32, rows.clamp(1, MAX_GRID) as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `blocks` blocks of exactly `REDUCE_THREADS` threads (capped; kernels loop over the rest).
pub(crate) fn reduce(blocks: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks.clamp(1, MAX_GRID) as u32, 1, 1),
        block_dim: (REDUCE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Blocks for the first pass of a sum over `n` elements: one per 8·REDUCE_THREADS elements, at
/// most `SUM_BLOCKS`. A function of `n` only, so the summation order is fixed.
pub(crate) fn sum_blocks(n: usize) -> usize {
    n.div_ceil(8 * REDUCE_THREADS as usize).clamp(1, SUM_BLOCKS)
}

/// Launch `args` (built on `dev`'s stream) with `cfg`, naming `kernel` in the error.
///
/// # Safety
/// The arguments must match the kernel's parameters and describe memory inside live buffers.
pub(crate) unsafe fn launch(
    dev: &CudaDevice,
    kernel: &'static str,
    mut args: LaunchArgs<'_>,
    cfg: LaunchConfig,
) -> Result<(), CudaError> {
    args.launch(cfg)
        .map(|_| ())
        .map_err(|e| dev.driver_err(kernel, e))
}

/// The function `base_<suffix>` of `module` on `dev`.
pub(crate) fn typed(
    dev: &CudaDevice,
    module: super::nvrtc::Module,
    base: &str,
    suffix: &str,
) -> Result<CudaFunction, CudaError> {
    dev.function(module, &format!("{base}_{suffix}"))
}

/// `Err(InvalidArgument)` unless `len ≥ need` (a buffer too short for the shapes given).
pub(crate) fn check_len(
    op: &'static str,
    what: &str,
    len: usize,
    need: usize,
) -> Result<(), CudaError> {
    if len < need {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("{what} has {len} elements, {need} needed"),
        });
    }
    Ok(())
}
