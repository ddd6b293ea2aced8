//! Animated GIF and WebP without ffmpeg, through the `image` crate: frames in (composited onto
//! the full canvas, alpha onto white), and GIF out (each frame with its own palette and delay,
//! marked as nst's with a GIF comment, written atomically). Animated WebP is read only: the
//! `image` crate does not encode it.

use anyhow::{bail, Result};
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, DynamicImage, Frame, Frames, ImageDecoder};
use nst::image::RgbImage;
use std::cell::RefCell;
use std::io::BufReader;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// The animated formats read without ffmpeg, judged by the file's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gif,
    WebP,
}

/// `Gif` or `WebP` when the bytes start like one.
pub fn kind(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"GIF8") {
        Some(Kind::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Kind::WebP)
    } else {
        None
    }
}

/// The frames of an animated GIF or WebP, one at a time.
pub struct AnimReader {
    frames: Frames<'static>,
    pub width: usize,
    pub height: usize,
    /// The first frame's delay in milliseconds (its frame rate for a video output).
    pub first_delay_ms: Option<u32>,
    /// The delay of the last frame read, in milliseconds.
    pub last_delay_ms: u32,
    pending: Option<Frame>,
}

impl AnimReader {
    /// Opens `path`; the canvas must have at most `max_pixels` pixels. Errors: corrupt files.
    pub fn open(path: &Path, kind: Kind, max_pixels: u64) -> Result<AnimReader> {
        let file = std::fs::File::open(path)?;
        let r = BufReader::new(file);
        let bad = |e: image::ImageError| {
            anyhow::anyhow!("{}: corrupt or unsupported: {e}", path.display())
        };
        let (dims, frames): ((u32, u32), Frames<'static>) = match kind {
            Kind::Gif => {
                let d = GifDecoder::new(r).map_err(bad)?;
                (d.dimensions(), d.into_frames())
            }
            Kind::WebP => {
                let d = WebPDecoder::new(r).map_err(bad)?;
                (d.dimensions(), d.into_frames())
            }
        };
        let pixels = dims.0 as u64 * dims.1 as u64;
        if pixels == 0 {
            bail!("{}: the animation has no pixels", path.display());
        }
        if pixels > max_pixels {
            bail!(
                "{}: {}×{} = {pixels} pixels is over the limit of {max_pixels} (raise it with --max-pixels)",
                path.display(),
                dims.0,
                dims.1
            );
        }
        let mut reader = AnimReader {
            frames,
            width: dims.0 as usize,
            height: dims.1 as usize,
            first_delay_ms: None,
            last_delay_ms: 100,
            pending: None,
        };
        // The first frame is read now: a file without frames, or a corrupt one, fails here.
        match reader.frames.next() {
            Some(Ok(f)) => {
                reader.first_delay_ms = Some(delay_ms(&f));
                reader.pending = Some(f);
            }
            Some(Err(e)) => return Err(bad(e)),
            None => bail!("{}: no frames in this file", path.display()),
        }
        Ok(reader)
    }

    /// The next frame, or `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let f = match self.pending.take() {
            Some(f) => f,
            None => match self.frames.next() {
                None => return Ok(None),
                Some(f) => f.map_err(|e| anyhow::anyhow!("decoding a frame: {e}"))?,
            },
        };
        self.last_delay_ms = delay_ms(&f);
        Ok(Some(RgbImage::from_dynamic(&DynamicImage::ImageRgba8(
            f.into_buffer(),
        ))))
    }
}

/// A frame's delay in whole milliseconds (browsers show a delay under 20 ms as 100 ms).
fn delay_ms(f: &Frame) -> u32 {
    let (n, d) = f.delay().numer_denom_ms();
    let ms = n.checked_div(d).unwrap_or(0);
    if ms < 20 {
        100
    } else {
        ms
    }
}

/// A `Write` into a buffer the [`GifWriter`] keeps (the GIF encoder owns its writer and has no
/// way to give it back).
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An animated GIF built in memory and written atomically at the end.
pub struct GifWriter {
    bytes: Shared,
    encoder: Option<GifEncoder<Shared>>,
}

impl GifWriter {
    pub fn new() -> Result<GifWriter> {
        let bytes = Shared::default();
        let mut encoder = GifEncoder::new_with_speed(bytes.clone(), 10);
        encoder.set_repeat(Repeat::Infinite)?;
        Ok(GifWriter {
            bytes,
            encoder: Some(encoder),
        })
    }

    /// Adds a frame shown for `delay_ms` milliseconds (GIF keeps 10 ms steps).
    pub fn write(&mut self, frame: &RgbImage, delay_ms: u32) -> Result<()> {
        let rgb = image::RgbImage::from_raw(frame.width as u32, frame.height as u32, frame.to_u8())
            .expect("a whole frame");
        let rgba = DynamicImage::ImageRgb8(rgb).to_rgba8();
        let delay = image::Delay::from_saturating_duration(Duration::from_millis(delay_ms as u64));
        self.encoder
            .as_mut()
            .expect("open until finish")
            .encode_frame(Frame::from_parts(rgba, 0, 0, delay))?;
        Ok(())
    }

    /// Ends the GIF, marks it as nst's and writes it over `path` atomically.
    pub fn finish(mut self, path: &Path) -> Result<()> {
        // Dropping the encoder writes the GIF trailer.
        drop(self.encoder.take());
        let mut bytes = std::mem::take(&mut *self.bytes.0.borrow_mut());
        nst::provenance::mark_gif(&mut bytes);
        nst::fsutil::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))?;
        Ok(())
    }
}
