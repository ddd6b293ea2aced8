//! Which files nst wrote. Every picture nst saves carries a mark (a PNG `tEXt` chunk
//! `Software` = `nst`, a JPEG `COM` segment `nst`), and every safetensors file it writes has
//! `__metadata__` `format` starting with `nst-`. A later run may replace a file with the mark (its
//! own earlier output) but refuses, unless told to, to replace a file without it: the user's
//! own picture that happens to have an output's name. Animated GIFs carry a comment
//! extension `nst` (GIF89a specification §24) before their first image.
//!
//! PNG chunk layout: PNG 1.2 specification §5.3 (length, type, data, CRC-32 of type + data);
//! `tEXt`: §11.3.4.3. JPEG segments: ITU-T T.81 Annex B (`FF D8` SOI, `FF E0` APP0, `FF FE`
//! COM, `FF DA` SOS).

use std::io::Read;
use std::path::Path;

/// The text of the mark: the PNG `Software` keyword's value, and the start of the JPEG comment.
pub const MARK: &str = "nst";

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// Bytes read from the start of a file to look for the mark (it sits in the first few dozen).
const PROBE_BYTES: u64 = 64 * 1024;

fn png_text_chunk() -> Vec<u8> {
    let mut body = b"tEXtSoftware\0".to_vec();
    body.extend_from_slice(MARK.as_bytes());
    let mut chunk = ((body.len() - 4) as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    chunk
}

/// Adds the mark to encoded PNG bytes: a `tEXt` chunk `Software` = `nst` right after `IHDR`.
/// Bytes that are not a PNG with an `IHDR` first are left as they are.
pub fn mark_png(png: &mut Vec<u8>) {
    // Signature (8) + IHDR: length (4) + type (4) + 13 data bytes + CRC (4).
    const AFTER_IHDR: usize = 8 + 4 + 4 + 13 + 4;
    if png.len() >= AFTER_IHDR && png.starts_with(PNG_SIGNATURE) && &png[12..16] == b"IHDR" {
        png.splice(AFTER_IHDR..AFTER_IHDR, png_text_chunk());
    }
}

/// Adds the mark to encoded JPEG bytes: a `COM` segment `nst` after SOI and the JFIF APP0
/// segment (which must come first). Bytes that are not a JPEG are left as they are.
pub fn mark_jpeg(jpeg: &mut Vec<u8>) {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return;
    }
    let mut at = 2;
    if jpeg.len() >= 6 && jpeg[2..4] == [0xFF, 0xE0] {
        at = 4 + u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize;
        if at > jpeg.len() {
            return;
        }
    }
    let mut segment = vec![0xFF, 0xFE];
    segment.extend_from_slice(&((2 + MARK.len()) as u16).to_be_bytes());
    segment.extend_from_slice(MARK.as_bytes());
    jpeg.splice(at..at, segment);
}

/// Where a GIF's blocks start: after the header (6 bytes), the logical screen descriptor (7)
/// and the global colour table when there is one (GIF89a §17–19). `None` if not a GIF.
fn gif_blocks_start(b: &[u8]) -> Option<usize> {
    if b.len() < 13 || !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return None;
    }
    let packed = b[10];
    let table = if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    };
    Some(13 + table).filter(|&at| at <= b.len())
}

/// The mark as a GIF comment extension: introducer, label, one sub-block, terminator.
fn gif_comment() -> Vec<u8> {
    let mut c = vec![0x21, 0xFE, MARK.len() as u8];
    c.extend_from_slice(MARK.as_bytes());
    c.push(0);
    c
}

/// Adds the mark to encoded GIF bytes: a comment extension `nst` before the first block
/// (a GIF89a feature: the header becomes `GIF89a`). Bytes that are not a GIF are left as they
/// are.
pub fn mark_gif(gif: &mut Vec<u8>) {
    if let Some(at) = gif_blocks_start(gif) {
        gif[..6].copy_from_slice(b"GIF89a");
        gif.splice(at..at, gif_comment());
    }
}

/// Whether GIF bytes carry the mark: a comment extension `nst` before the first image.
fn gif_is_marked(b: &[u8]) -> bool {
    let Some(mut at) = gif_blocks_start(b) else {
        return false;
    };
    let want = gif_comment();
    // Extension blocks (0x21, label, sub-blocks ending with a 0 length) until an image (0x2C).
    while at + 2 <= b.len() && b[at] == 0x21 {
        if b[at..].starts_with(&want) {
            return true;
        }
        at += 2;
        while let Some(&len) = b.get(at) {
            at += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
    }
    false
}

/// Whether PNG bytes carry the mark: a `tEXt` `Software` = `nst` chunk before the first `IDAT`.
fn png_is_marked(b: &[u8]) -> bool {
    let want = png_text_chunk();
    let mut at = PNG_SIGNATURE.len();
    while at + 8 <= b.len() {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        if &b[at + 4..at + 8] == b"IDAT" {
            return false;
        }
        if b[at..].starts_with(&want) {
            return true;
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    false
}

/// Whether JPEG bytes carry the mark: a `COM` segment starting with `nst` before SOS.
fn jpeg_is_marked(b: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= b.len() && b[at] == 0xFF {
        let (marker, len) = (
            b[at + 1],
            u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize,
        );
        if marker == 0xDA {
            return false;
        }
        if marker == 0xFE && b[at + 4..].starts_with(MARK.as_bytes()) && len == 2 + MARK.len() {
            return true;
        }
        at += 2 + len;
    }
    false
}

/// Whether safetensors bytes (at least their header) name an nst format in `__metadata__`.
fn safetensors_is_ours(b: &[u8]) -> bool {
    let Some(len) = b
        .get(..8)
        .map(|l| u64::from_le_bytes(l.try_into().expect("8 bytes")))
    else {
        return false;
    };
    let Some(header) = usize::try_from(len)
        .ok()
        .and_then(|n| b.get(8..8usize.checked_add(n)?))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|h| {
            let f = h.get("__metadata__")?.get("format")?.as_str()?.to_owned();
            Some(f.starts_with("nst-"))
        })
        .unwrap_or(false)
}

/// Whether the file at `path` was written by nst: a PNG, JPEG or GIF with the mark, or a safetensors
/// file whose `__metadata__` `format` starts with `nst-`. Looks at the first 64 KiB only (1 MiB
/// for safetensors headers); anything unreadable, or not a regular file, is not ours.
pub fn written_by_nst(path: &Path) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::new();
    if f.take(1 << 20).read_to_end(&mut head).is_err() {
        return false;
    }
    written_by_nst_bytes(&head)
}

/// Whether the bytes of a file (at least its first 64 KiB; 1 MiB for a safetensors header)
/// carry nst's mark: see [`written_by_nst`].
pub fn written_by_nst_bytes(head: &[u8]) -> bool {
    let probe = &head[..head.len().min(PROBE_BYTES as usize)];
    if probe.starts_with(PNG_SIGNATURE) {
        png_is_marked(probe)
    } else if probe.starts_with(&[0xFF, 0xD8]) {
        jpeg_is_marked(probe)
    } else if probe.starts_with(b"GIF8") {
        gif_is_marked(probe)
    } else {
        safetensors_is_ours(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8, 9]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn marked_pictures_decode_to_the_same_pixels_and_are_recognised() {
        for (format, mark) in [
            (image::ImageFormat::Png, mark_png as fn(&mut Vec<u8>)),
            (image::ImageFormat::Jpeg, mark_jpeg),
            (image::ImageFormat::Gif, mark_gif),
        ] {
            let plain = encode(format);
            let mut marked = plain.clone();
            mark(&mut marked);
            // PNG: length, type, "Software\0nst", CRC; JPEG: marker, length, "nst".
            // GIF: introducer, label, length, "nst", terminator.
            let added = match format {
                image::ImageFormat::Png => 24,
                _ => 7,
            };
            assert_eq!(marked.len(), plain.len() + added);
            let a = image::load_from_memory(&plain).unwrap().to_rgb8();
            let b = image::load_from_memory(&marked).unwrap().to_rgb8();
            assert_eq!(a, b, "{format:?}: the mark changes no pixel");
            let d =
                std::env::temp_dir().join(format!("nst-prov-{}-{format:?}", std::process::id()));
            std::fs::write(&d, &plain).unwrap();
            assert!(!written_by_nst(&d), "{format:?} without the mark");
            std::fs::write(&d, &marked).unwrap();
            assert!(written_by_nst(&d), "{format:?} with the mark");
            // A truncated marked file is still recognised from its head; a cut one is not ours.
            std::fs::write(&d, &marked[..marked.len() / 2]).unwrap();
            assert!(written_by_nst(&d));
            std::fs::write(&d, &marked[..10]).unwrap();
            assert!(!written_by_nst(&d));
            std::fs::remove_file(&d).unwrap();
        }
    }

    #[test]
    fn safetensors_and_other_files() {
        let d = std::env::temp_dir().join(format!("nst-prov-st-{}", std::process::id()));
        let st = |meta: &str| {
            let h = format!("{{\"__metadata__\":{meta}}}");
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(h.as_bytes());
            b
        };
        for (bytes, ours) in [
            (st(r#"{"format":"nst-vgg19"}"#), true),
            (st(r#"{"format":"nst-features"}"#), true),
            (st(r#"{"format":"pt"}"#), false),
            (st("{}"), false),
            (u64::MAX.to_le_bytes().to_vec(), false),
            (b"plain text".to_vec(), false),
            (Vec::new(), false),
        ] {
            std::fs::write(&d, &bytes).unwrap();
            assert_eq!(
                written_by_nst(&d),
                ours,
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        std::fs::remove_file(&d).unwrap();
        assert!(!written_by_nst(&d), "missing file");
        assert!(!written_by_nst(&std::env::temp_dir()), "a directory");
    }
}
