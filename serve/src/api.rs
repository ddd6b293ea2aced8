//! The HTTP API (see docs/API.md): routes, handlers, JSON errors.

use super::app::{ApiError, App};
use super::assets::{gallery, static_file, GALLERY};
use super::params::Params;
use super::record::is_id;
use super::store::{remove_dir, Refused};
use super::upload::{create_jobs, read_form};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

type ApiResult<T> = Result<T, ApiError>;

/// The router with every route of the API and the page.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = usize::try_from(app.limits.max_upload_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/api/info", get(info))
        .route("/api/gallery/{name}", get(gallery_image))
        .route("/api/jobs", get(list).post(create))
        .route("/api/instant", post(instant))
        .route("/api/jobs/{id}", get(job).delete(delete))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/result.png", get(result_png))
        .route("/api/jobs/{id}/preview.png", get(preview_png))
        .route("/api/jobs/{id}/snapshots/{step}", get(snapshot_png))
        .fallback(page)
        .method_not_allowed_fallback(|| async {
            ApiError(StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Host and Origin checks; security headers on every answer.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Err(e) = check_origin(&app, req.headers(), req.method()) {
        return e.into_response();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Refuse a `Host` not in the allowed list, and a state-changing request from another origin.
fn check_origin(app: &App, headers: &HeaderMap, method: &Method) -> ApiResult<()> {
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = header_str(header::HOST).unwrap_or("");
    if let Some(allowed) = &app.allowed_hosts {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "unexpected Host header {host:?}: use one of {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(origin) = header_str(header::ORIGIN) {
            let same = origin
                .strip_prefix("http://")
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    format!("cross-origin request from {origin} refused"),
                ));
            }
        }
    }
    Ok(())
}

/// The page's files; a JSON 404 for anything else.
async fn page(uri: Uri) -> Response {
    match static_file(uri.path()) {
        Some((mime, bytes)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => ApiError(
            StatusCode::NOT_FOUND,
            format!("no such page {}", uri.path()),
        )
        .into_response(),
    }
}

async fn info(State(app): State<Arc<App>>) -> Json<Value> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gallery: Vec<Value> = GALLERY
        .iter()
        .map(|g| {
            json!({"id": g.id, "title": g.title, "credit": g.credit, "role": g.role,
                   "url": format!("/api/gallery/{}", g.id)})
        })
        .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "devices": devices(threads),
        "limits": app.limits,
        "defaults": Params::default(),
        "gallery": gallery,
        // Whether POST /api/instant (and init=fast) works here.
        "instant": app.fast.is_some(),
    }))
}

/// The CPU, then every usable GPU (`cuda:N`, with name, compute capability and memory), or one
/// unavailable `cuda` entry saying why there is none.
fn devices(threads: usize) -> Vec<Value> {
    let mut out = vec![
        json!({"id": "cpu", "label": format!("CPU ({threads} threads)"),
                              "available": true}),
    ];
    let gpus = nst::engine::Device::cuda_devices();
    if gpus.is_empty() {
        let why = nst::engine::Device::cuda_unavailable_reason().unwrap_or_default();
        out.push(json!({"id": "cuda", "label": "CUDA GPU", "available": false, "reason": why}));
    }
    for d in gpus {
        let label = match d.cuda_info() {
            Ok(i) => format!(
                "{d}: {} (sm_{}{}, {:.0} GiB)",
                i.name,
                i.compute_capability.0,
                i.compute_capability.1,
                i.total_memory_bytes as f64 / (1u64 << 30) as f64
            ),
            Err(_) => d.to_string(),
        };
        out.push(json!({"id": d.to_string(), "label": label, "available": true}));
    }
    out
}

async fn gallery_image(Path(name): Path<String>) -> ApiResult<Response> {
    let g = gallery(&name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no gallery image {name:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, g.mime),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        g.bytes,
    )
        .into_response())
}

async fn list(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({ "jobs": app.store.list() }))
}

/// The multipart form of `POST /api/jobs` and `POST /api/instant`, read whole: a declared
/// oversized body is refused before reading it (a client that sent `Expect: 100-continue` then
/// never sends it).
async fn form_parts(
    app: &App,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Vec<super::upload::Part>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.limits.max_upload_bytes) {
        return Err(super::upload::too_large(&app.limits));
    }
    let multipart = multipart.map_err(|r| {
        ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected a multipart/form-data body ({})", r.body_text()),
        )
    })?;
    read_form(multipart, &app.limits).await
}

/// `POST /api/instant`: the feed-forward picture as `image/png`, answered directly.
async fn instant(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let form = form_parts(&app, &headers, multipart).await?;
    let app2 = app.clone();
    let png = tokio::task::spawn_blocking(move || super::upload::instant(&app2, form))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let form = form_parts(&app, &headers, multipart).await?;
    let app2 = app.clone();
    let mut views = tokio::task::spawn_blocking(move || create_jobs(&app2, form))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    // The first job's address; one photo answers its job, several `{"jobs": [job, …]}`.
    let location = views
        .first()
        .and_then(|v| v["id"].as_str())
        .map(|id| format!("/api/jobs/{id}"))
        .unwrap_or_default();
    let body = if views.len() == 1 {
        views.remove(0)
    } else {
        json!({ "jobs": views })
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

fn unknown(id: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no job {id:?}"))
}

/// `id` if it names a known job.
fn known(app: &App, id: &str) -> ApiResult<()> {
    if is_id(id) && app.store.contains(id) {
        Ok(())
    } else {
        Err(unknown(id))
    }
}

async fn job(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    known(&app, &id)?;
    app.store.view(&id).map(Json).ok_or_else(|| unknown(&id))
}

async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    known(&app, &id)?;
    let remove_now = app.store.delete(&id).map_err(|_| unknown(&id))?;
    if remove_now {
        let dir = app.store.job_dir(&id);
        let _ = tokio::task::spawn_blocking(move || remove_dir(&dir)).await;
    }
    Ok(Json(json!({ "id": id, "deleted": true })))
}

async fn cancel(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    known(&app, &id)?;
    match app.store.cancel(&id) {
        Ok(v) => Ok(Json(v)),
        Err(Refused::Unknown) => Err(unknown(&id)),
        Err(Refused::AlreadyFinished(s)) => Err(ApiError(
            StatusCode::CONFLICT,
            format!("job {id} is already {}", s.as_str()),
        )),
    }
}

/// Serve a PNG from the job directory. Results and snapshots never change once written (ids
/// are not reused), so browsers may keep them (`immutable`); previews are revalidated.
async fn png_file(
    app: &App,
    id: &str,
    file: &str,
    what: &str,
    immutable: bool,
) -> ApiResult<Response> {
    let path = app.store.job_dir(id).join(file);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("job {id} has no {what}")))?;
    let cache = if immutable {
        "private, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response();
    if file == "result.png" {
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"nst-{id}.png\"")) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

async fn result_png(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Response> {
    known(&app, &id)?;
    let rec = app.store.record(&id).ok_or_else(|| unknown(&id))?;
    if rec.result_size.is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("job {id} has no result ({})", rec.status.as_str()),
        ));
    }
    png_file(&app, &id, "result.png", "result", true).await
}

async fn preview_png(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Response> {
    known(&app, &id)?;
    png_file(&app, &id, "preview.png", "preview yet", false).await
}

async fn snapshot_png(
    State(app): State<Arc<App>>,
    Path((id, step)): Path<(String, String)>,
) -> ApiResult<Response> {
    known(&app, &id)?;
    let rec = app.store.record(&id).ok_or_else(|| unknown(&id))?;
    let step = step
        .parse::<usize>()
        .ok()
        .filter(|s| rec.snapshots.contains(s))
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("job {id} has no snapshot {step}"),
            )
        })?;
    let file = format!("snapshots/{}", super::worker::snapshot_name(step));
    png_file(&app, &id, &file, "such snapshot", true).await
}

/// Server-sent events: `status` (a snapshot with the loss history) first, then `progress`
/// every iteration, `preview` when a new preview image is written, `status` when the queue
/// position or state changes, and a final `done` (or `deleted`), after which the stream ends.
async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>> {
    known(&app, &id)?;
    let (first, rx) = app.store.subscribe(&id).ok_or_else(|| unknown(&id))?;
    struct St {
        pending: VecDeque<Arc<super::store::Ev>>,
        rx: Option<super::store::EventRx>,
        app: Arc<App>,
        id: String,
    }
    let st = St {
        pending: first.into(),
        rx: Some(rx),
        app,
        id,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let ev = loop {
            if let Some(ev) = st.pending.pop_front() {
                break ev;
            }
            let rx = st.rx.as_mut()?;
            match rx.recv().await {
                Ok(ev) => break ev,
                Err(RecvError::Lagged(_)) => {
                    // Fell behind: resynchronise with a full snapshot.
                    st.pending.extend(st.app.store.snapshot(&st.id));
                }
                Err(RecvError::Closed) => return None,
            }
        };
        if ev.last {
            st.rx = None;
            st.pending.clear();
        }
        let event = Event::default().event(ev.name).data(&ev.data);
        Some((Ok(event), st))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
