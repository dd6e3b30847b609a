//! The REST API: axum handlers under `/v1`, bearer-token auth, JSON errors,
//! Server-Sent Events, metrics and the OpenAPI document.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dlm_examples::api::{
    CancelQuery, DEFAULT_PAGE, ErrorBody, ErrorDetail, Job, JobEvent, JobFile, JobPage, JobPatch,
    JobState, ListQuery, MAX_BODY_BYTES, MAX_JOB_BODY_BYTES, MAX_PAGE, NewJob, Settings, Upload,
};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use utoipa::OpenApi;

use crate::manager::{Manager, ManagerError};

/// Shared by every handler.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) manager: Arc<Manager>,
    pub(crate) token: Arc<str>,
    /// Cancelled on SIGTERM/SIGINT; ends the event streams.
    pub(crate) shutdown: dlm_core::CancellationToken,
}

/// An error response with a stable code.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        let (status, code) = match &e {
            ManagerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ManagerError::InvalidDest(_) => (StatusCode::BAD_REQUEST, "invalid_dest"),
            ManagerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ManagerError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ManagerError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            );
        }
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

/// Parses a JSON request body whatever its `Content-Type` (so `curl -d` works).
fn json_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body?;
    let bad = |e: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid JSON body: {e}"),
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    // serde reads structs from arrays too; the API takes objects only.
    if !value.is_object() {
        return Err(bad("expected a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Compares without an early exit, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if same_secret(t.as_bytes(), state.token.as_bytes()) => next.run(req).await,
        _ => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token (see STATE_DIR/token or DLM_TOKEN)",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

/// Builds the router.
pub(crate) fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/v1/jobs",
            post(add_job)
                .layer(DefaultBodyLimit::max(MAX_JOB_BODY_BYTES))
                .get(list_jobs),
        )
        .route(
            "/v1/jobs/{id}",
            get(get_job).patch(patch_job).delete(cancel_job),
        )
        .route("/v1/jobs/{id}/pause", post(pause_job))
        .route("/v1/jobs/{id}/resume", post(resume_job))
        .route("/v1/settings", get(get_settings).patch(patch_settings))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(protected)
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("job id {id:?} is not a number"),
        )
    })
}

/// Queue a download.
#[utoipa::path(post, path = "/v1/jobs", request_body = NewJob,
    responses((status = 201, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
async fn add_job(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let new: NewJob = json_body(body)?;
    Ok((StatusCode::CREATED, Json(s.manager.add(new)?)))
}

/// List jobs, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_jobs(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<JobPage>> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let jobs = s.manager.list(q.state, q.after.unwrap_or(0), limit)?;
    let next_after = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(Json(JobPage { jobs, next_after }))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_job(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    Ok(Json(s.manager.job(parse_id(&id)?)?))
}

/// Change a job's priority, rate limit or file selection.
#[utoipa::path(patch, path = "/v1/jobs/{id}", params(("id" = i64, Path, description = "Job id")),
    request_body = JobPatch,
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_job(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Job>> {
    let id = parse_id(&id)?;
    let p: JobPatch = json_body(body)?;
    Ok(Json(s.manager.patch(
        id,
        p.priority,
        p.rate_limit,
        p.files,
    )?))
}

/// Cancel a job (optionally deleting its partial file).
#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = i64, Path, description = "Job id"), CancelQuery),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn cancel_job(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<CancelQuery>, QueryRejection>,
) -> ApiResult<Json<Job>> {
    let id = parse_id(&id)?;
    let Query(q) = q?;
    Ok(Json(s.manager.cancel(id, q.delete_file)?))
}

/// Pause a queued or running job (state saved).
#[utoipa::path(post, path = "/v1/jobs/{id}/pause", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn pause_job(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    Ok(Json(s.manager.pause(parse_id(&id)?).await?))
}

/// Queue a paused or failed job again; it resumes where it stopped.
#[utoipa::path(post, path = "/v1/jobs/{id}/resume", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn resume_job(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    Ok(Json(s.manager.resume(parse_id(&id)?)?))
}

/// The global limits.
#[utoipa::path(get, path = "/v1/settings",
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn get_settings(State(s): State<AppState>) -> Json<Settings> {
    Json(s.manager.settings())
}

/// Change the global limits (persisted).
#[utoipa::path(patch, path = "/v1/settings", request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_settings(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Settings>> {
    let new: Settings = json_body(body)?;
    Ok(Json(s.manager.set_settings(new)?))
}

/// Live job events as Server-Sent Events (`event:` is the type, `data:` a
/// [`JobEvent`]); a client that falls behind gets a `lagged` event.
#[utoipa::path(get, path = "/v1/events",
    responses((status = 200, description = "text/event-stream of JobEvent", content_type = "text/event-stream"),
              (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.manager.subscribe();
    let shutdown = s.shutdown.clone();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ev) => {
                let name = match &ev {
                    JobEvent::Added { .. } => "added",
                    JobEvent::Started { .. } => "started",
                    JobEvent::Progress { .. } => "progress",
                    JobEvent::Seeding { .. } => "seeding",
                    JobEvent::Paused { .. } => "paused",
                    JobEvent::Completed { .. } => "completed",
                    JobEvent::Failed { .. } => "failed",
                    JobEvent::Cancelled { .. } => "cancelled",
                };
                SseEvent::default()
                    .event(name)
                    .data(serde_json::to_string(&ev).unwrap_or_default())
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                SseEvent::default().event("lagged").data(n.to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    })
    .take_until(async move { shutdown.cancelled().await });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let text = s.manager.metrics.render(s.manager.counts());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "ok", content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// This document.
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "dlmd", description = "dlm's download daemon: a persistent job queue over HTTP."),
    paths(add_job, list_jobs, get_job, patch_job, cancel_job, pause_job, resume_job, get_settings, patch_settings,
          events, metrics, healthz),
    components(schemas(NewJob, Upload, Job, JobFile, JobPage, JobState, JobPatch, Settings, ErrorBody, ErrorDetail,
                       JobEvent)),
    modifiers(&BearerAuth)
)]
pub(crate) struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }

    #[test]
    fn openapi_document_lists_the_api() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for p in [
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/pause",
            "/v1/settings",
            "/v1/events",
        ] {
            assert!(doc["paths"].get(p).is_some(), "{p} missing");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
