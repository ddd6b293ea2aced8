//! `POST /api/jobs`: reading the multipart form, checking the images and settings, and writing the
//! new job's directory. Upload file names are shown, never used as paths: the server names the
//! files (`content.png`, `style-0.jpg`, …) in a directory named by a random id.

use super::app::{ApiError, App};
use super::assets::gallery;
use super::decode::{decode_dynamic, probe, DecodeError};
use super::params::{in_field_words, Limits, Params};
use super::record::{new_id, now, InputImage, JobRecord, Status};
use super::store::remove_dir;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::Multipart;
use axum::http::StatusCode;
use serde_json::Value;

/// One part of the form, in the order sent.
pub enum Part {
    /// An uploaded image: `content` (true) or `style`, the client's file name, the bytes.
    Upload(bool, String, Bytes),
    /// A text field.
    Text(String, String),
}

/// The 413 answer for a body over the limit.
pub fn too_large(limits: &Limits) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "upload too large: at most {} MiB per request (all images together)",
            limits.max_upload_bytes as f64 / (1024.0 * 1024.0)
        ),
    )
}

fn multipart_error(e: MultipartError, limits: &Limits) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limits)
    } else {
        ApiError::bad_request(format!("malformed multipart form: {}", e.body_text()))
    }
}

/// A file name fit for display: its last path component, without control characters, at most
/// 100 characters.
fn label(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// Read every part of the form (the body limit applies).
pub async fn read_form(mut mp: Multipart, limits: &Limits) -> Result<Vec<Part>, ApiError> {
    let mut parts = Vec::new();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limits))?
    {
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some();
        match name.as_str() {
            "content" | "style" => {
                let file_name = label(field.file_name().unwrap_or(""));
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(e, limits))?;
                if bytes.is_empty() && file_name.is_empty() {
                    continue; // a file input left empty
                }
                let shown = if file_name.is_empty() {
                    format!("{name} upload")
                } else {
                    file_name
                };
                parts.push(Part::Upload(name == "content", shown, bytes));
            }
            "" => return Err(ApiError::bad_request("a form field has no name")),
            _ if is_file => {
                return Err(ApiError::bad_request(format!(
                    "field {name:?}: files go in `content` or `style`"
                )))
            }
            _ => {
                let text = field.text().await.map_err(|e| multipart_error(e, limits))?;
                parts.push(Part::Text(name, text));
            }
        }
    }
    Ok(parts)
}

/// An input checked and ready to store.
struct Checked {
    image: InputImage,
    /// Bytes to write into the job directory (uploads only).
    bytes: Option<(String, Bytes)>,
}

fn decode_error(e: DecodeError, what: &str) -> ApiError {
    match e {
        DecodeError::NotImage(m) => {
            ApiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{what}: {m}"))
        }
        DecodeError::TooLarge(m) => ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("{what}: {m}")),
        DecodeError::Corrupt(m) => ApiError::bad_request(format!("{what}: {m}")),
    }
}

fn check_gallery(name: &str) -> Result<Checked, ApiError> {
    let g = gallery(name.trim()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "no gallery image {name:?} (see GET /api/info for the list)"
        ))
    })?;
    let (_, width, height) = probe(g.bytes, u64::MAX).map_err(|e| decode_error(e, name))?;
    Ok(Checked {
        image: InputImage {
            source: "gallery".into(),
            name: g.id.into(),
            file: None,
            width,
            height,
        },
        bytes: None,
    })
}

fn check_upload(
    shown: String,
    bytes: Bytes,
    file_stem: String,
    limits: &Limits,
) -> Result<Checked, ApiError> {
    let (format, width, height) =
        probe(&bytes, limits.max_pixels).map_err(|e| decode_error(e, &shown))?;
    // Decode fully now, so that a broken file is refused here rather than failing the job later.
    decode_dynamic(&bytes, limits.max_pixels).map_err(|e| decode_error(e, &shown))?;
    let ext = format.extensions_str().first().copied().unwrap_or("img");
    Ok(Checked {
        image: InputImage {
            source: "upload".into(),
            name: shown,
            file: Some(format!("{file_stem}.{ext}")),
            width,
            height,
        },
        bytes: Some((format!("{file_stem}.{ext}"), bytes)),
    })
}

/// A checked form: the settings and the images.
pub struct Form {
    pub params: Params,
    /// `params` as the run's configuration (checked).
    pub cfg: nst::transfer::StyleTransferConfig,
    /// One or more content photos: a job each.
    contents: Vec<Checked>,
    styles: Vec<Checked>,
}

/// What `POST /api/instant` and a job with `init=fast` answer when the feed-forward networks are
/// not installed.
pub const NO_FAST: &str =
    "the instant (feed-forward) networks are not installed on this server: run `nst-cli weights fetch`";

/// Checks a job form: the images (decoded once, so a broken file is refused here), the settings,
/// and the sizes and memory the run would need, for each content photo (`content` uploads and
/// `content_gallery` names, any number ≥ 1: a job each). One bad photo refuses the whole form,
/// naming it. Blocking (decodes the images).
pub fn check_form(limits: &Limits, parts: Vec<Part>) -> Result<Form, ApiError> {
    let mut params = Params::default();
    let mut contents: Vec<Checked> = Vec::new();
    let mut styles: Vec<Checked> = Vec::new();
    for part in parts {
        match part {
            Part::Upload(true, shown, bytes) => {
                contents.push(check_upload(shown, bytes, "content".into(), limits)?);
            }
            Part::Upload(false, shown, bytes) => {
                let stem = format!("style-{}", styles.len());
                styles.push(check_upload(shown, bytes, stem, limits)?);
            }
            Part::Text(k, v) if k == "content_gallery" => {
                for name in v.split(',').filter(|s| !s.trim().is_empty()) {
                    contents.push(check_gallery(name)?);
                }
            }
            Part::Text(k, v) if k == "style_gallery" => {
                for name in v.split(',').filter(|s| !s.trim().is_empty()) {
                    styles.push(check_gallery(name)?);
                }
            }
            Part::Text(k, v) => params.set(&k, &v).map_err(ApiError::bad_request)?,
        }
    }
    if contents.is_empty() {
        return Err(ApiError::bad_request(
            "no content image: upload one or more as `content` or name gallery images in `content_gallery`",
        ));
    }
    if styles.is_empty() {
        return Err(ApiError::bad_request(
            "no style image: upload one or more as `style` or name gallery images in `style_gallery`",
        ));
    }
    let cfg = params
        .config(styles.len(), limits)
        .map_err(ApiError::bad_request)?;
    // Sizes and memory now, from the images' headers: a job that cannot run is refused here
    // (it used to be accepted and fail, or abort the server, when it started).
    let wh = |i: &InputImage| (i.width as usize, i.height as usize);
    let style_sizes: Vec<_> = styles.iter().map(|s| wh(&s.image)).collect();
    for c in &contents {
        let sizes = nst::transfer::scale_sizes(wh(&c.image), cfg.size_px, cfg.scales);
        nst::plan::check(&style_sizes, &cfg, &sizes).map_err(|e| {
            let msg = in_field_words(e);
            ApiError::bad_request(if contents.len() > 1 {
                format!("content image {}: {msg}", c.image.name)
            } else {
                msg
            })
        })?;
    }
    Ok(Form {
        params,
        cfg,
        contents,
        styles,
    })
}

/// `POST /api/instant`: the feed-forward picture of the form's content in the style of its
/// style images (blended by `style_weights`) at `size`, as PNG bytes. Blocking.
pub fn instant(app: &App, parts: Vec<Part>) -> Result<Vec<u8>, ApiError> {
    let Some(nets) = app.fast.as_ref() else {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, NO_FAST.into()));
    };
    let Form {
        cfg,
        mut contents,
        styles,
        ..
    } = check_form(&app.limits, parts)?;
    if contents.len() > 1 {
        return Err(ApiError::bad_request(
            "the instant picture takes one content image",
        ));
    }
    let content = contents.remove(0);
    let decode = |c: &Checked, longest: usize| -> Result<nst::image::RgbImage, ApiError> {
        let bytes: &[u8] = match &c.bytes {
            Some((_, b)) => b,
            None => gallery(&c.image.name).map(|g| g.bytes).unwrap_or_default(),
        };
        super::decode::decode(bytes, app.limits.max_pixels, Some(longest))
            .map_err(|e| decode_error(e, &c.image.name))
    };
    let photo = decode(&content, cfg.size_px)?.resize_longest(cfg.size_px);
    // The predictor looks at a 256² centre square: larger paintings are shrunk first.
    let paintings = styles
        .iter()
        .map(|s| decode(s, 512))
        .collect::<Result<Vec<_>, _>>()?;
    let picture = nets
        .picture(&photo, &paintings, &cfg.style_blend_weights)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let picture = if cfg.original_colors {
        nst::image::original_colors(&picture, &photo)
    } else {
        picture
    };
    picture
        .encode(image::ImageFormat::Png)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Check the form and queue a job per content photo; returns their views, in the order sent.
/// All or nothing: a form that cannot be queued whole (a bad photo, no room in the queue, a
/// failed write) queues none. Blocking (decodes the images, writes files): run on a blocking
/// thread.
pub fn create_jobs(app: &App, parts: Vec<Part>) -> Result<Vec<Value>, ApiError> {
    let limits = &app.limits;
    let Form {
        params,
        contents,
        styles,
        ..
    } = check_form(limits, parts)?;
    let room = limits.max_queued.saturating_sub(app.store.queued());
    if contents.len() > room {
        let what = if contents.len() == 1 {
            String::new()
        } else {
            format!(" for the {} photos of this form", contents.len())
        };
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the queue is full{what} ({} jobs waiting, at most {}); try again later",
                app.store.queued(),
                limits.max_queued
            ),
        ));
    }
    if params.init == "fast" && app.fast.is_none() {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, NO_FAST.into()));
    }
    // Every job's directory first; the records go into the queue once all are stored.
    let mut stored: Vec<(String, Checked)> = Vec::new();
    for content in contents {
        let id = loop {
            let id = new_id();
            let taken = stored.iter().any(|(s, _)| *s == id);
            if !taken && !app.store.contains(&id) && !app.store.job_dir(&id).exists() {
                break id;
            }
        };
        let dir = app.store.job_dir(&id);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            for c in std::iter::once(&content).chain(&styles) {
                if let Some((file, bytes)) = &c.bytes {
                    nst::image::write_atomic(&dir.join(file), bytes)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
            }
            Ok(())
        };
        if let Err(e) = write() {
            remove_dir(&dir);
            for (id, _) in &stored {
                remove_dir(&app.store.job_dir(id));
            }
            return Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the job: {e}"),
            ));
        }
        stored.push((id, content));
    }
    let created = now();
    Ok(stored
        .into_iter()
        .map(|(id, content)| {
            app.store.insert(JobRecord {
                id,
                status: Status::Queued,
                created,
                started: None,
                finished: None,
                params: params.clone(),
                content: content.image,
                styles: styles.iter().map(|s| s.image.clone()).collect(),
                progress: None,
                history: vec![],
                error: None,
                preview_step: 0,
                snapshots: vec![],
                result_size: None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_drop_paths_and_control_characters() {
        assert_eq!(label("../../etc/passwd"), "passwd");
        assert_eq!(label("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(label("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(label(&"x".repeat(500)).len(), 100);
    }
}
