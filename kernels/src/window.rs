//! The geometry of a 2-D sliding window, defined once for convolution and pooling, on the CPU
//! ([`Conv2dParams`](crate::cpu::conv2d::Conv2dParams),
//! [`Pool2dParams`](crate::cpu::pool2d::Pool2dParams)) and on CUDA (whose `#[repr(C)]`
//! `ConvGeom`/`PoolGeom` are filled from those).

/// A KH×KW window moved with stride (SH, SW) over an input zero-padded by (PH, PW) on each
/// side. The output has `OH = (H + 2·PH − KH) / SH + 1` rows (floor mode, as PyTorch's
/// default), likewise OW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// (KH, KW).
    pub kernel: (usize, usize),
    /// (SH, SW).
    pub stride: (usize, usize),
    /// (PH, PW), on each side.
    pub padding: (usize, usize),
}

/// Why a [`Window2d`] does not fit an input ([`Window2d::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("kernel size must be ≥ 1")]
    ZeroKernel,
    #[error("stride must be ≥ 1")]
    ZeroStride,
    #[error("kernel larger than the padded input")]
    KernelTooLarge,
}

impl Window2d {
    /// Whether an H×W input admits this window: kernel and stride ≥ 1 on both axes (checked
    /// in that order) and `H + 2·PH ≥ KH`, `W + 2·PW ≥ KW`.
    pub fn check(&self, h: usize, w: usize) -> Result<(), WindowError> {
        if self.kernel.0 == 0 || self.kernel.1 == 0 {
            return Err(WindowError::ZeroKernel);
        }
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return Err(WindowError::ZeroStride);
        }
        if h + 2 * self.padding.0 < self.kernel.0 || w + 2 * self.padding.1 < self.kernel.1 {
            return Err(WindowError::KernelTooLarge);
        }
        Ok(())
    }

    /// The output size (OH, OW) for an H×W input, after [`Window2d::check`].
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), WindowError> {
        self.check(h, w)?;
        Ok((self.out_h(h), self.out_w(w)))
    }

    /// Output rows OH for an input of height `h`, unchecked: for geometry already validated
    /// (as the engine does before calling a kernel); a zero stride panics and a kernel larger
    /// than the padded input gives no meaningful size.
    pub fn out_h(&self, h: usize) -> usize {
        (h + 2 * self.padding.0 - self.kernel.0) / self.stride.0 + 1
    }

    /// Output columns OW for an input of width `w`, unchecked like [`Window2d::out_h`].
    pub fn out_w(&self, w: usize) -> usize {
        (w + 2 * self.padding.1 - self.kernel.1) / self.stride.1 + 1
    }

    /// 1×1, stride 1, no padding: every output cell is its input cell (a convolution's input
    /// plane is then its own im2col matrix).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == (1, 1) && self.padding == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(k: usize, s: usize, p: usize) -> Window2d {
        Window2d {
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
        }
    }

    #[test]
    fn output_size_is_floor_mode_and_invalid_windows_are_named() {
        // VGG's 3×3/1/1 convolution and 2×2/2 pooling; odd sizes floor.
        assert_eq!(win(3, 1, 1).output_size(7, 5), Ok((7, 5)));
        assert_eq!(win(2, 2, 0).output_size(7, 6), Ok((3, 3)));
        assert_eq!(win(3, 2, 1).output_size(8, 1), Ok((4, 1)));
        // The window exactly fills the padded input: one output.
        assert_eq!(win(5, 3, 1).output_size(3, 3), Ok((1, 1)));
        let anisotropic = Window2d {
            kernel: (3, 1),
            stride: (2, 1),
            padding: (0, 0),
        };
        assert_eq!(anisotropic.output_size(7, 4), Ok((3, 4)));
        assert_eq!(win(0, 1, 0).check(4, 4), Err(WindowError::ZeroKernel));
        assert_eq!(win(0, 0, 0).check(4, 4), Err(WindowError::ZeroKernel));
        assert_eq!(win(2, 0, 0).output_size(4, 4), Err(WindowError::ZeroStride));
        assert_eq!(
            win(6, 1, 1).output_size(3, 9),
            Err(WindowError::KernelTooLarge)
        );
        assert!(win(1, 1, 0).is_pointwise());
        assert!(!win(1, 1, 1).is_pointwise() && !win(1, 2, 0).is_pointwise());
    }
}
