//! Images in and out: decoding (every format the `image` crate reads, EXIF orientation, 8/16-bit,
//! grayscale, alpha flattened onto white), resizing (Lanczos3), atomic saving (PNG or JPEG by
//! extension) and luminance-only colour transfer.

use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageReader, Rgb32FImage};
use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

/// Default cap on input pixels (width × height), checked from the header before decoding.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// An RGB image with values in 0..=1 (HWC, row-major: pixel (x, y) at `3·(y·width + x)`).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

fn img_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Image {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Why a JPEG is incomplete, or `None`: its image data (the last start-of-scan marker,
/// `FF DA`) must be followed by the end-of-image marker (`FF D9`). The decoder would otherwise
/// fill a cut-off file's missing rows with grey and report success. (`FF DA` and `FF D9` cannot
/// occur inside entropy-coded data, where `FF` is stuffed as `FF 00`; an EXIF thumbnail's own
/// markers come before the main image's scan.)
pub fn jpeg_truncation(bytes: &[u8]) -> Option<&'static str> {
    let find_last = |m: [u8; 2]| bytes.windows(2).rposition(|w| w == m);
    match find_last([0xFF, 0xDA]) {
        None => Some("corrupt JPEG: no image data (no start-of-scan marker)"),
        Some(sos) if !bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]) => Some(
            "truncated JPEG: the file ends before its image data does (no end-of-image marker)",
        ),
        Some(_) => None,
    }
}

/// Decodes without the `image` crate's memory limits (the caller checked the pixel count) and
/// applies the EXIF orientation.
fn decode_oriented<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    path: &Path,
) -> Result<DynamicImage> {
    reader.no_limits();
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| img_err(path, format!("corrupt or unsupported image: {e}")))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| img_err(path, format!("corrupt image: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

impl RgbImage {
    /// Decode an image file. Errors (one clear message each): missing or unreadable file, empty
    /// file, not an image / unsupported format, corrupt data, more than `max_pixels` pixels
    /// (checked from the header, before the pixels are decoded).
    pub fn load(path: &Path, max_pixels: u64) -> Result<RgbImage> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => img_err(path, "no such file"),
            _ => img_err(path, format!("cannot read: {e}")),
        })?;
        if meta.is_dir() {
            return Err(img_err(path, "is a directory, not an image"));
        }
        if !meta.is_file() {
            // A FIFO would block forever, a device never end.
            return Err(img_err(
                path,
                "not a regular file (a FIFO, device or socket); give an image file",
            ));
        }
        if meta.len() == 0 {
            return Err(img_err(path, "empty file"));
        }
        let bytes = std::fs::read(path).map_err(|e| img_err(path, format!("cannot read: {e}")))?;
        RgbImage::decode(&bytes, path, max_pixels)
    }

    /// Decode an image held in memory (e.g. read from standard input); `name` is what errors
    /// call it. Errors: as [`RgbImage::load`] (empty, not an image, corrupt, truncated JPEG, more
    /// than `max_pixels` pixels, checked from the header before decoding).
    pub fn decode(bytes: &[u8], name: &Path, max_pixels: u64) -> Result<RgbImage> {
        let path = name;
        if bytes.is_empty() {
            return Err(img_err(path, "empty file"));
        }
        let head = &bytes[..bytes.len().min(64)];
        // Judge by content, not by the extension: a text file named .jpg is not an image.
        let Ok(format) = image::guess_format(head) else {
            return Err(img_err(
                path,
                "not an image (unknown format; PNG, JPEG, WebP, TIFF, BMP and GIF are read)",
            ));
        };
        let reader = || ImageReader::with_format(Cursor::new(bytes), format);
        let (w, h) = reader()
            .into_dimensions()
            .map_err(|e| img_err(path, format!("corrupt or unsupported image: {e}")))?;
        let pixels = w as u64 * h as u64;
        if pixels == 0 {
            return Err(img_err(path, "image has no pixels"));
        }
        if pixels > max_pixels {
            return Err(img_err(
                path,
                format!("{w}×{h} = {pixels} pixels is over the limit of {max_pixels} (raise it with --max-pixels)"),
            ));
        }
        if format == image::ImageFormat::Jpeg {
            if let Some(why) = jpeg_truncation(bytes) {
                return Err(img_err(path, why));
            }
        }
        let img = decode_oriented(reader(), path)?;
        Ok(RgbImage::from_dynamic(&img))
    }

    /// From a decoded image: alpha is composited onto white.
    pub fn from_dynamic(img: &DynamicImage) -> RgbImage {
        let rgba = img.to_rgba32f();
        let (w, h) = rgba.dimensions();
        let mut data = Vec::with_capacity(w as usize * h as usize * 3);
        for p in rgba.pixels() {
            let a = p.0[3].clamp(0.0, 1.0);
            for c in 0..3 {
                data.push((p.0[c] * a + (1.0 - a)).clamp(0.0, 1.0));
            }
        }
        RgbImage {
            width: w as usize,
            height: h as usize,
            data,
        }
    }

    /// From 8-bit RGB pixels (HWC). Errors: `InvalidArgument` on a length mismatch.
    pub fn from_u8(width: usize, height: usize, rgb: &[u8]) -> Result<RgbImage> {
        if rgb.len() != width * height * 3 {
            return Err(Error::InvalidArgument(format!(
                "{} bytes for a {width}×{height} RGB image",
                rgb.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data: rgb.iter().map(|&v| v as f32 / 255.0).collect(),
        })
    }

    fn to_buffer(&self) -> Rgb32FImage {
        Rgb32FImage::from_raw(self.width as u32, self.height as u32, self.data.clone())
            .expect("length checked on construction")
    }

    /// Resized to exactly `width × height` with a Lanczos3 filter (values clamped to 0..=1).
    pub fn resize(&self, width: usize, height: usize) -> RgbImage {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let out = image::imageops::resize(
            &self.to_buffer(),
            width.max(1) as u32,
            height.max(1) as u32,
            image::imageops::FilterType::Lanczos3,
        );
        RgbImage {
            width: width.max(1),
            height: height.max(1),
            data: out
                .into_raw()
                .into_iter()
                .map(|v| v.clamp(0.0, 1.0))
                .collect(),
        }
    }

    /// Resized so that the longer side is `size_px` (aspect ratio kept).
    pub fn resize_longest(&self, size_px: usize) -> RgbImage {
        let (w, h) = fit_longest(self.width, self.height, size_px);
        self.resize(w, h)
    }

    /// The `width`×`height` region whose top-left pixel is (`x`, `y`). Errors: `Image` when the
    /// region is empty or leaves the image.
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> Result<RgbImage> {
        if width == 0 || height == 0 || x + width > self.width || y + height > self.height {
            return Err(Error::InvalidArgument(format!(
                "crop {width}×{height}+{x}+{y} of a {}×{} image",
                self.width, self.height
            )));
        }
        let mut data = Vec::with_capacity(width * height * 3);
        for row in y..y + height {
            let start = (row * self.width + x) * 3;
            data.extend_from_slice(&self.data[start..start + width * 3]);
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// 8-bit RGB pixels (rounded, clamped).
    pub fn to_u8(&self) -> Vec<u8> {
        self.data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    }

    /// Write as PNG or JPEG (quality 95), chosen by the extension, atomically: a temporary file
    /// in the same directory, fsync, rename. The file carries nst's mark
    /// ([`crate::provenance`]). Errors: unknown extension, I/O failures.
    pub fn save(&self, path: &Path) -> Result<()> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("png") => image::ImageFormat::Png,
            Some("jpg" | "jpeg") => image::ImageFormat::Jpeg,
            _ => return Err(img_err(path, "output must end in .png, .jpg or .jpeg")),
        };
        let bytes = self
            .encode(format)
            .map_err(|e| img_err(path, format!("encoding failed: {e}")))?;
        write_atomic(path, &bytes)
    }

    /// The picture encoded as PNG or JPEG (quality 95; other formats are written as PNG), with
    /// nst's mark ([`crate::provenance`]). Errors: the encoder's.
    pub fn encode(
        &self,
        format: image::ImageFormat,
    ) -> std::result::Result<Vec<u8>, image::ImageError> {
        let buf = image::RgbImage::from_raw(self.width as u32, self.height as u32, self.to_u8())
            .expect("length checked");
        let mut bytes = std::io::Cursor::new(Vec::new());
        match format {
            image::ImageFormat::Jpeg => {
                let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
                buf.write_with_encoder(enc)?;
            }
            _ => buf.write_to(&mut bytes, image::ImageFormat::Png)?,
        }
        let mut bytes = bytes.into_inner();
        match format {
            image::ImageFormat::Jpeg => crate::provenance::mark_jpeg(&mut bytes),
            _ => crate::provenance::mark_png(&mut bytes),
        }
        Ok(bytes)
    }
}

/// (width, height) with the longer side `size_px`, the other scaled to keep the aspect ratio
/// (at least 1).
pub fn fit_longest(width: usize, height: usize, size_px: usize) -> (usize, usize) {
    if width >= height {
        (
            size_px,
            ((height as f64 * size_px as f64 / width as f64).round() as usize).max(1),
        )
    } else {
        (
            ((width as f64 * size_px as f64 / height as f64).round() as usize).max(1),
            size_px,
        )
    }
}

/// Write `bytes` to `path` atomically (see [`crate::fsutil::write_atomic`]): a crash or error
/// never leaves a partial file at `path`. Errors: `Image` with "cannot write" and the cause.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    crate::fsutil::write_atomic(path, |f| f.write_all(bytes)).map_err(|e| match e {
        Error::Io { error, .. } => img_err(path, format!("cannot write: {error}")),
        other => other,
    })
}

fn rgb_to_yiq(p: &[f32]) -> [f32; 3] {
    let (r, g, b) = (p[0], p[1], p[2]);
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        0.595_716 * r - 0.274_453 * g - 0.321_263 * b,
        0.211_456 * r - 0.522_591 * g + 0.311_135 * b,
    ]
}

fn yiq_to_rgb(y: f32, i: f32, q: f32) -> [f32; 3] {
    [
        y + 0.9563 * i + 0.6210 * q,
        y - 0.2721 * i - 0.6474 * q,
        y - 1.1070 * i + 1.7046 * q,
    ]
}

/// Luminance-only transfer (Gatys et al. 2016, "Preserving colour in neural artistic style
/// transfer", colour-histogram-free variant): the stylised image's luminance (YIQ Y) with the
/// content's chrominance (I, Q). Both images must have the same size; the content is resized
/// otherwise.
pub fn original_colors(stylised: &RgbImage, content: &RgbImage) -> RgbImage {
    let content = content.resize(stylised.width, stylised.height);
    let mut data = Vec::with_capacity(stylised.data.len());
    for (s, c) in stylised
        .data
        .chunks_exact(3)
        .zip(content.data.chunks_exact(3))
    {
        let y = rgb_to_yiq(s)[0];
        let [_, i, q] = rgb_to_yiq(c);
        data.extend(yiq_to_rgb(y, i, q).iter().map(|v| v.clamp(0.0, 1.0)));
    }
    RgbImage {
        width: stylised.width,
        height: stylised.height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_jpeg_is_named_truncated_and_a_whole_one_is_not() {
        // SOI, an APP1 holding a thumbnail's own SOS/EOI, the main scan, EOI.
        let mut whole = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xDA, 0xFF, 0xD9];
        whole.extend([
            0xFF, 0xDA, 0x00, 0x0C, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56,
        ]);
        whole.extend([0xFF, 0xD9]);
        assert_eq!(jpeg_truncation(&whole), None);
        // Cut inside the main scan: the thumbnail's EOI comes before the last SOS.
        let cut = &whole[..whole.len() - 4];
        assert!(jpeg_truncation(cut).unwrap().starts_with("truncated JPEG"));
        assert!(jpeg_truncation(&[0xFF, 0xD8, 0xFF, 0xD9])
            .unwrap()
            .contains("no image data"));
    }
    use std::path::PathBuf;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nst-image-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trips_png_and_rejects_bad_inputs() {
        let d = tmpdir("rt");
        let img = RgbImage::from_u8(
            3,
            2,
            &[
                0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 255,
            ],
        )
        .unwrap();
        let p = d.join("a.png");
        img.save(&p).unwrap();
        let back = RgbImage::load(&p, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(back.to_u8(), img.to_u8());
        // over the pixel cap: refused from the header
        let e = RgbImage::load(&p, 5).unwrap_err().to_string();
        assert!(e.contains("over the limit"), "{e}");
        // missing, empty, not an image, truncated
        assert!(RgbImage::load(&d.join("nope.png"), 100)
            .unwrap_err()
            .to_string()
            .contains("no such file"));
        std::fs::write(d.join("empty.png"), b"").unwrap();
        assert!(RgbImage::load(&d.join("empty.png"), 100)
            .unwrap_err()
            .to_string()
            .contains("empty file"));
        std::fs::write(d.join("text.png"), b"hello, not an image").unwrap();
        assert!(RgbImage::load(&d.join("text.png"), 100).is_err());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(d.join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
        assert!(RgbImage::load(&d.join("cut.png"), 100).is_err());
        assert!(img.save(&d.join("a.gifx")).is_err());
        // no temp files left behind
        assert!(std::fs::read_dir(&d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn alpha_is_flattened_onto_white_and_gray_expands() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 0, 255, 128]).unwrap();
        let img = RgbImage::from_dynamic(&DynamicImage::ImageRgba8(rgba));
        let u = img.to_u8();
        assert_eq!(&u[..3], &[255, 255, 255]); // transparent red → white
        assert_eq!(&u[3..], &[127, 127, 255]); // half-transparent blue over white
        let gray = image::GrayImage::from_raw(1, 1, vec![77]).unwrap();
        assert_eq!(
            RgbImage::from_dynamic(&DynamicImage::ImageLuma8(gray)).to_u8(),
            vec![77, 77, 77]
        );
    }

    #[test]
    fn resize_keeps_aspect_and_original_colors_keeps_chroma() {
        assert_eq!(fit_longest(1024, 768, 512), (512, 384));
        assert_eq!(fit_longest(300, 1200, 400), (100, 400));
        let img = RgbImage {
            width: 4,
            height: 2,
            data: vec![0.5; 24],
        };
        let r = img.resize_longest(8);
        assert_eq!((r.width, r.height), (8, 4));
        assert!(r.data.iter().all(|v| (v - 0.5).abs() < 1e-4));
        // A gray stylised image with reddish content: luminance from the first, hue from the second.
        let s = RgbImage {
            width: 1,
            height: 1,
            data: vec![0.4, 0.4, 0.4],
        };
        let c = RgbImage {
            width: 1,
            height: 1,
            data: vec![0.8, 0.2, 0.2],
        };
        let o = original_colors(&s, &c);
        assert!((rgb_to_yiq(&o.data)[0] - 0.4).abs() < 1e-3);
        assert!(
            o.data[0] > o.data[1] && (o.data[1] - o.data[2]).abs() < 1e-3,
            "{:?}",
            o.data
        );
    }

    /// A 2×1 JPEG (red, blue) with an EXIF APP1 segment setting `orientation`.
    fn jpeg_with_orientation(orientation: u16) -> Vec<u8> {
        let img = image::RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let mut jpg = std::io::Cursor::new(Vec::new());
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpg, 100,
        ))
        .unwrap();
        let jpg = jpg.into_inner();
        // TIFF (little-endian) with one IFD entry: 0x0112 Orientation, SHORT, count 1.
        let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        tiff.extend(orientation.to_le_bytes());
        tiff.extend([0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpg[..2].to_vec(); // SOI
        out.extend([0xFF, 0xE1]);
        out.extend(len.to_be_bytes());
        out.extend(app1);
        out.extend(&jpg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        let d = tmpdir("exif");
        let p = d.join("rot.jpg");
        std::fs::write(&p, jpeg_with_orientation(1)).unwrap();
        let upright = RgbImage::load(&p, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((upright.width, upright.height), (2, 1));
        // 6 = rotate 90° clockwise to display: the 2×1 image becomes 1×2, red on top.
        std::fs::write(&p, jpeg_with_orientation(6)).unwrap();
        let r = RgbImage::load(&p, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((r.width, r.height), (1, 2));
        let u = r.to_u8();
        assert!(u[0] > 200 && u[2] < 60, "top pixel should be red: {u:?}");
        assert!(
            u[5] > 200 && u[3] < 60,
            "bottom pixel should be blue: {u:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reads_every_supported_format_and_16_bit_png() {
        let d = tmpdir("formats");
        let rgb = image::RgbImage::from_fn(5, 3, |x, y| {
            image::Rgb([(x * 50) as u8, (y * 100) as u8, 128])
        });
        let want = RgbImage::from_u8(5, 3, rgb.as_raw()).unwrap();
        for ext in ["png", "bmp", "tiff", "webp", "gif"] {
            let p = d.join(format!("img.{ext}"));
            rgb.save(&p).unwrap();
            let got = RgbImage::load(&p, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!((got.width, got.height), (5, 3), "{ext}");
            let max_err = got
                .to_u8()
                .iter()
                .zip(want.to_u8())
                .map(|(a, b)| (*a as i32 - b as i32).abs())
                .max()
                .unwrap();
            // GIF quantises to a 256-colour palette
            assert!(
                max_err <= if ext == "gif" { 24 } else { 0 },
                "{ext}: max error {max_err}"
            );
        }
        // 16-bit PNG keeps its precision through f32.
        let p16 = d.join("deep.png");
        image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(1, 1, vec![65535u16, 32768, 257])
            .unwrap()
            .save(&p16)
            .unwrap();
        let got = RgbImage::load(&p16, DEFAULT_MAX_PIXELS).unwrap();
        assert!(
            (got.data[1] - 32768.0 / 65535.0).abs() < 1e-6
                && (got.data[2] - 257.0 / 65535.0).abs() < 1e-6,
            "{:?}",
            got.data
        );
        // grayscale JPEG
        let pg = d.join("gray.jpg");
        image::GrayImage::from_raw(2, 2, vec![10, 20, 30, 40])
            .unwrap()
            .save(&pg)
            .unwrap();
        let g = RgbImage::load(&pg, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(g.data.len(), 12);
        assert!(g.data.chunks(3).all(|c| c[0] == c[1] && c[1] == c[2]));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
