//! The system's `ffmpeg` and `ffprobe` as subprocesses: probing a video (size, frame rate,
//! frame count, audio), decoding its frames as raw RGB through a pipe, and encoding frames
//! (H.264, the input's audio streams copied unchanged) into a file. The children run in their
//! own process group, so a Ctrl-C in the terminal reaches nst only, which then closes the
//! encoder's input and lets it finish a playable file.

use anyhow::{bail, Context, Result};
use nst::image::RgbImage;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The one line printed when ffmpeg or ffprobe is missing.
fn not_installed(tool: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{tool} not found on PATH: video files need FFmpeg (Debian/Ubuntu: `sudo apt-get install \
         ffmpeg`; macOS: `brew install ffmpeg`); animated GIFs work without it"
    )
}

/// `tool args…` prepared to run in its own process group, quietly.
fn command(tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.arg("-hide_banner")
        .arg("-v")
        .arg("error")
        .process_group(0);
    c
}

fn spawn(mut c: Command, tool: &str) -> Result<Child> {
    c.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_installed(tool),
        _ => anyhow::anyhow!("running {tool}: {e}"),
    })
}

/// The last non-empty line of a tool's standard error (its error message).
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

/// What ffprobe says of a video file.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The frames' size as shown, in pixels: sides swapped for a stream with a quarter-turn
    /// display rotation (a phone's portrait clip), as ffmpeg decodes such frames upright.
    pub width: usize,
    pub height: usize,
    /// Frames per second as ffmpeg writes it (`30/1`, `30000/1001`).
    pub rate: String,
    /// The frame count, when the container says it (or the duration × rate).
    pub frames: Option<u64>,
    pub has_audio: bool,
}

/// `ffprobe` on `path`: its first video stream and whether it has audio. Errors: ffprobe
/// missing (saying how to install it), a file it cannot read or without a video stream.
pub fn probe(path: &Path) -> Result<Probe> {
    let mut c = command("ffprobe");
    c.args([
        "-show_entries",
        "stream=codec_type,width,height,avg_frame_rate,r_frame_rate,nb_frames\
         :stream_side_data=rotation:stream_tags=rotate:format=duration",
        "-of",
        "json",
    ])
    .arg(path)
    .stdin(Stdio::null());
    let out = match c.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_installed("ffprobe")),
        Err(e) => bail!("running ffprobe: {e}"),
    };
    if !out.status.success() {
        bail!(
            "{}: not a video ffmpeg can read ({})",
            path.display(),
            last_line(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{}: ffprobe's answer", path.display()))?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let Some(video) = streams.iter().find(|s| s["codec_type"] == "video") else {
        bail!("{}: no video stream in this file", path.display());
    };
    let (Some(width), Some(height)) = (video["width"].as_u64(), video["height"].as_u64()) else {
        bail!("{}: the video stream has no size", path.display());
    };
    // A phone's portrait clip is stored landscape with a display rotation; ffmpeg turns its
    // frames upright when it decodes them, so a quarter turn swaps the shown sides.
    let (width, height) = if quarter_turn(video) {
        (height, width)
    } else {
        (width, height)
    };
    let good = |r: &serde_json::Value| {
        r.as_str()
            .filter(|r| rate_value(r).is_some_and(|f| f > 0.0 && f < 1000.0))
            .map(str::to_string)
    };
    let rate = good(&video["avg_frame_rate"])
        .or_else(|| good(&video["r_frame_rate"]))
        .unwrap_or_else(|| "25/1".into());
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok());
    let frames = video["nb_frames"]
        .as_str()
        .and_then(|n| n.parse::<u64>().ok())
        .or_else(|| Some((duration? * rate_value(&rate)?).round() as u64));
    Ok(Probe {
        width: width as usize,
        height: height as usize,
        rate,
        frames,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// Whether ffprobe's stream says its frames are shown turned by 90° or 270°: the display
/// matrix's `rotation` in degrees (its side data, ffmpeg ≥ 4) or the older `rotate` tag.
fn quarter_turn(stream: &serde_json::Value) -> bool {
    let side = stream["side_data_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["rotation"].as_f64());
    let tag = stream["tags"]["rotate"]
        .as_str()
        .and_then(|r| r.trim().parse::<f64>().ok());
    side.chain(tag)
        .next()
        .is_some_and(|r| r.is_finite() && (r.round() as i64).rem_euclid(180) == 90)
}

/// `a/b` or `a` as frames per second.
pub fn rate_value(rate: &str) -> Option<f64> {
    let (a, b) = rate.split_once('/').unwrap_or((rate, "1"));
    let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
    (b != 0.0).then(|| a / b).filter(|f| f.is_finite())
}

/// Frames of a video file, decoded by ffmpeg and scaled to `width × height` (Lanczos), every
/// frame as stored (no frames dropped or repeated).
pub struct Decoder {
    child: Child,
    stdout: ChildStdout,
    width: usize,
    height: usize,
    buf: Vec<u8>,
}

impl Decoder {
    pub fn open(path: &Path, width: usize, height: usize) -> Result<Decoder> {
        let mut c = command("ffmpeg");
        c.arg("-nostdin")
            .arg("-i")
            .arg(path)
            .args(["-map", "0:v:0", "-vsync", "0", "-vf"])
            .arg(format!("scale={width}:{height}:flags=lanczos"))
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(c, "ffmpeg")?;
        let stdout = child.stdout.take().expect("piped");
        Ok(Decoder {
            child,
            stdout,
            width,
            height,
            buf: vec![0; width * height * 3],
        })
    }

    /// The next frame, or `None` at the end. Errors: ffmpeg failing (its message).
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let mut got = 0;
        while got < self.buf.len() {
            match self.stdout.read(&mut self.buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => bail!("reading frames from ffmpeg: {e}"),
            }
        }
        if got == self.buf.len() {
            return Ok(Some(RgbImage::from_u8(self.width, self.height, &self.buf)?));
        }
        let mut err = vec![];
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_end(&mut err);
        }
        let status = self.child.wait().context("waiting for ffmpeg")?;
        if !status.success() {
            bail!("ffmpeg could not decode the video: {}", last_line(&err));
        }
        Ok(None)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // Stopped early (Ctrl-C, an error): the decoder is no longer needed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ffmpeg muxer for an output file's extension (mp4, mov, mkv, webm).
pub fn muxer(ext: &str) -> Option<&'static str> {
    match ext {
        "mp4" | "m4v" => Some("mp4"),
        "mov" => Some("mov"),
        "mkv" => Some("matroska"),
        "webm" => Some("webm"),
        _ => None,
    }
}

/// ffmpeg's codec arguments for a muxer: H.264 at CRF 18 with the audio copied, or for WebM
/// (which holds VP8/VP9/AV1 with Opus/Vorbis only) VP9 at CRF 31 in constant-quality mode
/// (`-b:v 0`, YouTube's recommendation for its resolution range) with the audio re-encoded
/// as Opus at 128 kb/s.
fn codec_args(muxer: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match muxer {
        "webm" => (
            &[
                "-c:v",
                "libvpx-vp9",
                "-crf",
                "31",
                "-b:v",
                "0",
                "-row-mt",
                "1",
                "-pix_fmt",
                "yuv420p",
            ],
            &["-c:a", "libopus", "-b:a", "128k"],
        ),
        _ => (
            &["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"],
            &["-c:a", "copy"],
        ),
    }
}

/// The tag nst writes in its videos' `comment` metadata: a video with it may be replaced
/// without `--overwrite`.
pub const MARK: &str = nst::provenance::MARK;

/// Frames encoded by ffmpeg (H.264, yuv420p, CRF 18; WebM: VP9, see [`codec_args`]) into a
/// temporary file beside `output`, renamed over it by [`Encoder::finish`]; the audio streams
/// of `audio_from` are copied unchanged (WebM: re-encoded as Opus), cut where the video ends
/// when it ends first. `width` and `height` must be even (yuv420p).
pub struct Encoder {
    child: Child,
    stdin: Option<ChildStdin>,
    tmp: PathBuf,
    output: PathBuf,
    stderr_thread: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Encoder {
    pub fn create(
        output: &Path,
        muxer: &str,
        (width, height): (usize, usize),
        rate: &str,
        audio_from: Option<&Path>,
    ) -> Result<Encoder> {
        let name = output
            .file_name()
            .context("the output has no file name")?
            .to_string_lossy();
        let tmp = output.with_file_name(format!(".{name}.tmp-{}-0", std::process::id()));
        let mut c = command("ffmpeg");
        c.args(["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{width}x{height}"))
            .args(["-framerate", rate, "-i", "pipe:0"]);
        let (video_codec, audio_codec) = codec_args(muxer);
        if let Some(a) = audio_from {
            // -shortest: a video cut short (Ctrl-C, --max-frames) ends its audio there too.
            c.arg("-i")
                .arg(a)
                .args(["-map", "0:v:0", "-map", "1:a?"])
                .args(audio_codec)
                .arg("-shortest");
        }
        c.args(video_codec)
            .args(["-metadata", &format!("comment={MARK}"), "-f", muxer])
            .arg(&tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn(c, "ffmpeg")?;
        let stdin = child.stdin.take();
        let mut stderr = child.stderr.take().expect("piped");
        // Drained on a thread so that a chatty ffmpeg never blocks on a full pipe.
        let stderr_thread = std::thread::spawn(move || {
            let mut b = vec![];
            let _ = stderr.read_to_end(&mut b);
            b
        });
        Ok(Encoder {
            child,
            stdin,
            tmp,
            output: output.to_path_buf(),
            stderr_thread: Some(stderr_thread),
        })
    }

    fn failure(&mut self) -> String {
        let _ = self.stdin.take();
        let _ = self.child.wait();
        let err = self
            .stderr_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        last_line(&err)
    }

    /// Sends one frame.
    pub fn write(&mut self, frame: &RgbImage) -> Result<()> {
        let bytes = frame.to_u8();
        let ok = self
            .stdin
            .as_mut()
            .is_some_and(|s| s.write_all(&bytes).is_ok());
        if !ok {
            let why = self.failure();
            bail!("ffmpeg stopped encoding: {why}");
        }
        Ok(())
    }

    /// Closes the input, waits for ffmpeg to finish the file and renames it over the output.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("waiting for ffmpeg")?;
        let err = self
            .stderr_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if !status.success() {
            bail!(
                "ffmpeg could not write {}: {}",
                self.output.display(),
                last_line(&err)
            );
        }
        std::fs::rename(&self.tmp, &self.output)
            .with_context(|| format!("writing {}", self.output.display()))?;
        Ok(())
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // finish() renamed the file; otherwise (an error) the partial file goes.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Whether a video file carries nst's mark (ffprobe reads its `comment` tag): an earlier
/// output, which may be replaced without `--overwrite`. False when ffprobe is missing.
pub fn written_by_nst(path: &Path) -> bool {
    if nst::fsutil::check_regular_file(path).is_err() {
        return false;
    }
    let mut c = command("ffprobe");
    c.args([
        "-show_entries",
        "format_tags=comment",
        "-of",
        "default=nw=1:nk=1",
    ])
    .arg(path)
    .stdin(Stdio::null());
    c.output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == MARK)
}

#[cfg(test)]
mod tests {
    use super::quarter_turn;
    use serde_json::json;

    #[test]
    fn a_quarter_turn_is_read_from_side_data_or_the_old_tag() {
        let side = |r: f64| json!({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": r}]});
        for (r, turned) in [
            (90.0, true),
            (-90.0, true),
            (270.0, true),
            (180.0, false),
            (0.0, false),
            (-180.0, false),
        ] {
            assert_eq!(quarter_turn(&side(r)), turned, "rotation {r}");
        }
        assert!(quarter_turn(&json!({"tags": {"rotate": "90"}})));
        assert!(!quarter_turn(&json!({"tags": {"rotate": "180"}})));
        assert!(!quarter_turn(&json!({"tags": {"rotate": "sideways"}})));
        assert!(!quarter_turn(&json!({"width": 64, "height": 48})));
        assert!(!quarter_turn(
            &json!({"side_data_list": [{"side_data_type": "Stereo 3D"}]})
        ));
    }
}
