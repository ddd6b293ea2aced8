//! Uploaded images, decoded from memory with the same care as `nst::image::RgbImage::load`: the
//! format judged by content, the pixel count checked from the header before decoding, EXIF
//! orientation applied.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use nst::image::RgbImage;
use std::io::Cursor;

/// Why bytes are not a usable image; each maps onto an HTTP status.
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not an image format we read (415).
    NotImage(String),
    /// More pixels than allowed (413).
    TooLarge(String),
    /// A known format but broken data (400).
    Corrupt(String),
}

/// The format and (width, height) from the header, checked against `max_pixels`.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<(ImageFormat, u32, u32), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::NotImage("empty file".into()));
    }
    let not_image = || {
        DecodeError::NotImage("not an image (PNG, JPEG, WebP, TIFF, BMP and GIF are read)".into())
    };
    let format = image::guess_format(bytes).map_err(|_| not_image())?;
    if format == ImageFormat::Jpeg {
        if let Some(why) = nst::image::jpeg_truncation(bytes) {
            return Err(DecodeError::Corrupt(why.into()));
        }
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions().map_err(|e| match e {
        image::ImageError::Unsupported(_) => not_image(),
        e => DecodeError::Corrupt(format!("corrupt or truncated image: {e}")),
    })?;
    let pixels = w as u64 * h as u64;
    if pixels == 0 {
        return Err(DecodeError::Corrupt("image has no pixels".into()));
    }
    if pixels > max_pixels {
        return Err(DecodeError::TooLarge(format!(
            "{w}×{h} = {pixels} pixels is over this server's limit of {max_pixels} pixels"
        )));
    }
    Ok((format, w, h))
}

/// Decode `bytes` (after [`probe`]), EXIF orientation applied.
pub fn decode_dynamic(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, DecodeError> {
    let (format, _, _) = probe(bytes, max_pixels)?;
    let corrupt = |e: image::ImageError| DecodeError::Corrupt(format!("corrupt image: {e}"));
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(corrupt)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Decode `bytes`, shrunk (Lanczos3) so that its longer side is at most `longest` px if given;
/// alpha is composited onto white.
pub fn decode(
    bytes: &[u8],
    max_pixels: u64,
    longest: Option<usize>,
) -> Result<RgbImage, DecodeError> {
    let mut img = decode_dynamic(bytes, max_pixels)?;
    if let Some(side) = longest {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w.max(h) > side {
            let (nw, nh) = nst::image::fit_longest(w, h, side);
            img = img.resize_exact(nw as u32, nh as u32, image::imageops::FilterType::Lanczos3);
        }
    }
    Ok(RgbImage::from_dynamic(&img))
}

/// PNG bytes of an image.
pub fn png(img: &RgbImage) -> Vec<u8> {
    let buf = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.to_u8())
        .expect("RgbImage keeps width·height·3 values");
    let mut out = Cursor::new(Vec::new());
    buf.write_to(&mut out, ImageFormat::Png)
        .expect("PNG encoding into memory does not fail");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let img = RgbImage::from_u8(
            3,
            2,
            &[
                10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3, 4, 5, 6, 7, 8, 9,
            ],
        )
        .unwrap();
        let bytes = png(&img);
        assert_eq!(probe(&bytes, 6).unwrap().1, 3);
        assert_eq!(decode(&bytes, 6, None).unwrap(), img);
        assert_eq!(decode(&bytes, 6, Some(2)).unwrap().width, 2);
        assert!(matches!(probe(&bytes, 5), Err(DecodeError::TooLarge(_))));
        assert!(matches!(probe(b"hello", 5), Err(DecodeError::NotImage(_))));
        assert!(matches!(probe(b"", 5), Err(DecodeError::NotImage(_))));
        assert!(matches!(
            probe(&bytes[..20], 6),
            Err(DecodeError::Corrupt(_))
        ));
        // A JPEG upload cut short is refused, not decoded with grey fill.
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        }))
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
        assert_eq!(probe(&jpeg, 1 << 20).unwrap().1, 64);
        match probe(&jpeg[..jpeg.len() * 3 / 4], 1 << 20) {
            Err(DecodeError::Corrupt(m)) => assert!(m.starts_with("truncated JPEG"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
