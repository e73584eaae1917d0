//! `medallion serve`: the dashboard site and a read-only JSON API over curated tables (axum).
//!
//! Invariants: only `GET` is answered; the API lists, describes and queries curated data tables
//! only (a raw, trusted, quarantine or ops table is refused with 403, and so is a named query
//! that reads one); there is no way to send SQL (only named queries from `catalog/queries/`,
//! with their `${param}` values quoted as literals); every error is JSON
//! `{"error": {"status", "code", "message"}}`. Bound to anything but loopback, a bearer token
//! is required ([`check_bind`]); when a token is set it is required on every request.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::data;
use super::site::Site;
use crate::catalog::{Catalog, TableEntry};

/// Environment variable holding the API's bearer token.
pub const TOKEN_ENV: &str = "MEDALLION_API_TOKEN";
/// Rows a page of query results holds by default.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// The most rows a page may hold.
pub const MAX_PAGE_SIZE: u64 = 1_000;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bound beyond loopback without a token.
    #[error(
        "serving on {addr} (not loopback) needs a bearer token: set {TOKEN_ENV}, or bind 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The socket failed.
    #[error("serve on {addr}: {message}")]
    Io {
        /// Address.
        addr: SocketAddr,
        /// What failed.
        message: String,
    },
}

/// Checks the bind policy: loopback is open to local users; anything else needs a token.
///
/// # Errors
/// [`ServeError::TokenRequired`].
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(ServeError::TokenRequired { addr })
    }
}

/// What the server reads.
#[derive(Debug)]
pub struct App {
    /// The built site.
    pub site: Site,
    /// The catalog (read on every request, so new versions are served).
    pub catalog: Arc<dyn Catalog>,
    /// Storage options for opening tables.
    pub options: HashMap<String, String>,
    /// `catalog/queries/`.
    pub queries_dir: PathBuf,
    /// Bearer token required when set.
    pub token: Option<String>,
}

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
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
        let body = json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn curated(e: &TableEntry) -> bool {
    e.stage == "curated" && e.kind == "data"
}

/// The router: site, API, JSON errors, auth.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/tables", get(tables))
        .route("/api/v1/tables/{name}", get(table))
        .route("/api/v1/query/{name}", get(query))
        .route("/api/v1/sql", get(no_sql).post(no_sql))
        .route("/api/{*rest}", get(api_not_found))
        .route("/", get(site_index))
        .route("/{*path}", get(site_path))
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Serves until the process ends.
///
/// # Errors
/// Socket errors.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    axum::serve(listener, router(app))
        .await
        .map_err(|e| ServeError::Io {
            addr,
            message: e.to_string(),
        })
}

/// Read-only and token checks, before any handler.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "read_only",
            "this server is read-only: GET only",
        )
        .into_response();
    }
    if let Some(token) = &app.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <token>`",
            )
            .into_response();
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn entries(app: &App) -> Result<Vec<TableEntry>, ApiError> {
    app.catalog
        .list()
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "catalog", e.to_string()))
}

async fn tables(State(app): State<Arc<App>>) -> ApiResult {
    let list: Vec<Value> = entries(&app)
        .await?
        .iter()
        .filter(|e| curated(e))
        .map(|e| {
            json!({"table": e.table, "description": e.description, "version": e.version,
                   "rows": e.rows, "columns": e.schema.len(), "updated_at": e.updated_at})
        })
        .collect();
    Ok(Json(json!({"tables": list})))
}

async fn table(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let all = entries(&app).await?;
    match all.iter().find(|e| e.table == name) {
        Some(e) if curated(e) => Ok(Json(json!({
            "table": e.table, "description": e.description, "version": e.version, "rows": e.rows,
            "contract_version": e.contract_version, "updated_at": e.updated_at,
            "columns": e.schema,
        }))),
        Some(e) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_curated",
            format!(
                "`{}` is a {} table: the API serves curated tables only",
                e.table, e.stage
            ),
        )),
        None if !name.starts_with("curated.") && name.contains('.') => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_curated",
            format!("`{name}`: the API serves curated tables only"),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_table",
            format!("no curated table `{name}` (GET /api/v1/tables lists them)"),
        )),
    }
}

async fn query(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
    Query(mut params): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    if params.contains_key("sql") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_sql",
            "ad-hoc SQL is not served: use a named query from catalog/queries",
        ));
    }
    let page: u64 = match params.remove("page") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| bad(format!("page `{p}` is not a number from 1")))?,
        None => 1,
    };
    let size: u64 = match params.remove("page_size") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| (1..=MAX_PAGE_SIZE).contains(p))
            .ok_or_else(|| bad(format!("page_size `{p}` is not 1..={MAX_PAGE_SIZE}")))?,
        None => DEFAULT_PAGE_SIZE,
    };
    let text = std::fs::read_to_string(app.queries_dir.join(format!("{name}.sql")));
    if let Ok(text) = &text {
        if let Some(t) = super::spec::table_refs(text)
            .into_iter()
            .find(|t| !t.starts_with("curated."))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_curated",
                format!("query `{name}` reads `{t}`: the API serves curated tables only"),
            ));
        }
    }
    let sql = crate::query::named(&app.queries_dir, &name, &params).map_err(|e| {
        if text.is_err() {
            ApiError::new(StatusCode::NOT_FOUND, "no_query", e.to_string())
        } else {
            bad(e.to_string())
        }
    })?;
    let all = entries(&app).await?;
    let readable: Vec<TableEntry> = all.into_iter().filter(curated).collect();
    let engine = crate::query::Engine::new(&readable, &app.options, crate::query::AsOf::Latest)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", e.to_string()))?;
    let sql = sql.trim().trim_end_matches(';');
    let run = |e: crate::query::QueryError| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            e.to_string(),
        )
    };
    let (_, count) = data::rows_json(&engine, &format!("SELECT count(*) AS n FROM (\n{sql}\n) c"))
        .await
        .map_err(run)?;
    let total = count
        .first()
        .and_then(|r| r.get("n"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let (schema, rows) = data::rows_json(
        &engine,
        &format!(
            "SELECT * FROM (\n{sql}\n) q LIMIT {size} OFFSET {}",
            (page - 1).saturating_mul(size)
        ),
    )
    .await
    .map_err(run)?;
    let pages = total.div_ceil(size).max(1);
    Ok(Json(json!({
        "query": name,
        "params": params,
        "columns": data::columns_of(&schema),
        "rows": rows,
        "page": page,
        "page_size": size,
        "total_rows": total,
        "pages": pages,
        "next_page": if page < pages { Some(page + 1) } else { None },
    })))
}

async fn no_sql() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "no_sql",
        "ad-hoc SQL is not served: use a named query from catalog/queries",
    )
}

async fn api_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint: GET /api/v1/tables, /api/v1/tables/<stage>.<table>, /api/v1/query/<name>",
    )
}

async fn site_index(State(app): State<Arc<App>>) -> Response {
    site_file(&app, String::new())
}

async fn site_path(State(app): State<Arc<App>>, UrlPath(rel): UrlPath<String>) -> Response {
    site_file(&app, rel)
}

fn site_file(app: &App, rel: String) -> Response {
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel
    };
    match app.site.files.get(&rel) {
        Some(bytes) => {
            let ty = match rel.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("json") => "application/json",
                _ => "text/plain; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, ty)], bytes.clone()).into_response()
        }
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no file `{rel}`"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_policy() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_bind(lo, None).is_ok());
        assert!(check_bind(any, None).is_err());
        assert!(check_bind(any, Some("")).is_err());
        assert!(check_bind(any, Some("t0ken")).is_ok());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
