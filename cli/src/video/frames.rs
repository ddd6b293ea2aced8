//! Frames in and out, whatever the file: a video through ffmpeg ([`super::ffmpeg`]), an
//! animated GIF or WebP through the `image` crate ([`super::anim`]).

use super::anim::{self, AnimReader, GifWriter};
use super::ffmpeg::{self, Decoder, Encoder, Probe};
use anyhow::{bail, Result};
use nst::image::RgbImage;
use std::io::Read;
use std::path::Path;

/// An opened input: its size and frame rate, before any frame is decoded.
pub enum Input {
    Video(Probe),
    Anim(AnimReader),
}

impl Input {
    /// Opens `path` (a regular file): an animated GIF/WebP by its first bytes, anything else
    /// through ffprobe. Errors: a missing file, ffprobe missing or failing, a corrupt animation.
    pub fn open(path: &Path, max_pixels: u64) -> Result<Input> {
        nst::fsutil::check_regular_file(path)?;
        let mut head = [0u8; 16];
        let n = std::fs::File::open(path)?.read(&mut head)?;
        if n == 0 {
            bail!("{}: empty file", path.display());
        }
        Ok(match anim::kind(&head[..n]) {
            Some(k) => Input::Anim(AnimReader::open(path, k, max_pixels)?),
            None => {
                let p = ffmpeg::probe(path)?;
                if (p.width as u64) * (p.height as u64) > max_pixels {
                    bail!(
                        "{}: {}×{} frames are over the limit of {max_pixels} pixels (raise it with --max-pixels)",
                        path.display(),
                        p.width,
                        p.height
                    );
                }
                Input::Video(p)
            }
        })
    }

    /// Width and height of the frames as stored.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Input::Video(p) => (p.width, p.height),
            Input::Anim(a) => (a.width, a.height),
        }
    }

    /// Frames per second as ffmpeg writes it (an animation's first delay: `1000/ms`).
    pub fn rate(&self) -> String {
        match self {
            Input::Video(p) => p.rate.clone(),
            Input::Anim(a) => format!("1000/{}", a.first_delay_ms.unwrap_or(100)),
        }
    }

    /// The frame count when known before decoding.
    pub fn frames(&self) -> Option<u64> {
        match self {
            Input::Video(p) => p.frames,
            Input::Anim(_) => None,
        }
    }

    pub fn has_audio(&self) -> bool {
        matches!(self, Input::Video(p) if p.has_audio)
    }

    /// The frames, each `width × height` (resampled with Lanczos when the size differs).
    pub fn frames_at(self, path: &Path, (width, height): (usize, usize)) -> Result<Source> {
        Ok(match self {
            Input::Video(_) => Source::Video(Decoder::open(path, width, height)?),
            Input::Anim(a) => Source::Anim(a, (width, height)),
        })
    }
}

/// Decoded frames, one at a time.
pub enum Source {
    Video(Decoder),
    Anim(AnimReader, (usize, usize)),
}

impl Source {
    /// The next frame (and its delay in milliseconds when the input is an animation), or
    /// `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<(RgbImage, Option<u32>)>> {
        Ok(match self {
            Source::Video(d) => d.next_frame()?.map(|f| (f, None)),
            Source::Anim(a, (w, h)) => a
                .next_frame()?
                .map(|f| (f.resize(*w, *h), Some(a.last_delay_ms))),
        })
    }
}

/// Where frames go.
pub enum Sink {
    Video(Encoder),
    /// An animated GIF; frames without their own delay get this one (ms).
    Gif(GifWriter, u32),
}

impl Sink {
    /// A sink for `output` by its extension (`gif`, or an ffmpeg muxer's), at `rate` frames
    /// per second, copying the audio of `audio_from`.
    pub fn create(
        output: &Path,
        size: (usize, usize),
        rate: &str,
        audio_from: Option<&Path>,
    ) -> Result<Sink> {
        let ext = extension(output);
        if ext == "gif" {
            let ms = ffmpeg::rate_value(rate).map_or(100, |f| (1000.0 / f).round() as u32);
            return Ok(Sink::Gif(GifWriter::new()?, ms.max(20)));
        }
        let muxer = ffmpeg::muxer(&ext).expect("extension checked");
        Ok(Sink::Video(Encoder::create(
            output, muxer, size, rate, audio_from,
        )?))
    }

    pub fn write(&mut self, frame: &RgbImage, delay_ms: Option<u32>) -> Result<()> {
        match self {
            Sink::Video(e) => e.write(frame),
            Sink::Gif(g, ms) => g.write(frame, delay_ms.unwrap_or(*ms)),
        }
    }

    /// Finishes the file and puts it at `output` (atomically: a rename).
    pub fn finish(self, output: &Path) -> Result<()> {
        match self {
            Sink::Video(e) => e.finish(),
            Sink::Gif(g, _) => g.finish(output),
        }
    }
}

/// A path's extension, lower case.
pub fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}
