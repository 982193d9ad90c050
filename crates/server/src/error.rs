//! API errors: a status, a stable machine-readable code and a message for people.

use axum::{
    Json,
    extract::rejection::{JsonRejection, QueryRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use palisade_store::StoreError;
use serde::Serialize;

/// An error returned by the API as `{"error": {"code": ..., "message": ...}}`.
///
/// Server-side failures are logged in full and reported to the client only as "internal
/// error", so SQL, paths and internals never leak (STYLE.md, HTTP errors).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable code: `unauthorized`, `forbidden`, `not_found`, `bad_request`, `conflict`, `request_timeout`, `length_required`, `payload_too_large`, `unavailable`, `internal`.
    code: &'static str,
    /// What went wrong, for people.
    message: String,
}

impl ApiError {
    /// 400 with a message saying what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    /// 401: no or unknown credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: what.into(),
        }
    }

    /// 409: the finding is not in a state the action applies to.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }

    /// 413: the body is larger than the endpoint takes.
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: message.into(),
        }
    }

    /// 408: the request's body did not arrive in time; the same request may succeed later.
    pub fn request_timeout(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: message.into(),
        }
    }

    /// 411: the endpoint takes only a body that declares its length.
    pub fn length_required(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::LENGTH_REQUIRED,
            code: "length_required",
            message: message.into(),
        }
    }

    /// 503: the server cannot take the request now; the same request may succeed later.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }

    /// 500: logged in full here, opaque to the client.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> ApiError {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "Request failed.");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; the server log has the details".into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"palisade\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::InvalidCursor => ApiError::bad_request(error.to_string()),
            StoreError::Conflict(message) => ApiError::conflict(message),
            other => ApiError::internal(&other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "bad_request",
        };
        ApiError {
            status,
            code,
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s.
///
/// A valid body is read with plain `serde_json`; only a body that fails goes through axum's
/// `Json`, for its exact rejection (content type, and the path to the bad field, which axum finds
/// by tracking every field of every value: a fifth of the cost of decoding an agent's batch).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        // `Bytes` honours the router's body limit, as `Json` does.
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(JsonRejection::from)?;
        if is_json(&headers)
            && let Ok(value) = serde_json::from_slice(&body)
        {
            return Ok(ApiJson(value));
        }
        let mut request = axum::extract::Request::new(axum::body::Body::from(body));
        *request.headers_mut() = headers;
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// Whether the content type is JSON as axum's `Json` accepts it: `application/json` or
/// `application/*+json`, with any parameters.
fn is_json(headers: &header::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[cfg(test)]
mod tests {
    use axum::{
        Router,
        body::Body,
        extract::{DefaultBodyLimit, FromRequest, Request},
        routing::post,
    };
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Batch {
        #[allow(dead_code)]
        items: Vec<u32>,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    async fn read(request: Request) -> Result<Batch, ApiError> {
        ApiJson::<Batch>::from_request(request, &())
            .await
            .map(|ApiJson(batch)| batch)
    }

    #[tokio::test]
    async fn json_bodies_are_read_and_bad_ones_are_refused_as_axum_refuses_them() {
        let batch = read(request(Some("application/json"), r#"{"items": [1, 2]}"#))
            .await
            .unwrap();
        assert_eq!(batch.items, [1, 2]);
        for content_type in [
            "application/json; charset=utf-8",
            "application/vnd.palisade+json",
        ] {
            assert!(
                read(request(Some(content_type), r#"{"items": []}"#))
                    .await
                    .is_ok()
            );
        }
        for content_type in [None, Some("text/plain"), Some("application/jsonx")] {
            let error = read(request(content_type, r#"{"items": []}"#))
                .await
                .unwrap_err();
            assert_eq!(
                error.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert_eq!(error.code, "unsupported_media_type");
        }
        // The message names the path to the bad value, as axum's does.
        let error = read(request(
            Some("application/json"),
            r#"{"items": [1, "two"]}"#,
        ))
        .await
        .unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.message.contains("items[1]"), "{}", error.message);
        let error = read(request(Some("application/json"), r#"{"items": [1"#))
            .await
            .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{}", error.message);
    }

    #[tokio::test]
    async fn the_body_limit_applies() {
        let app = Router::new()
            .route("/", post(|ApiJson(_): ApiJson<Batch>| async { "ok" }))
            .layer(DefaultBodyLimit::max(16));
        let small = app
            .clone()
            .oneshot(request(Some("application/json"), r#"{"items": [1]}"#))
            .await
            .unwrap();
        assert_eq!(small.status(), StatusCode::OK);
        let large = app
            .oneshot(request(
                Some("application/json"),
                r#"{"items": [1, 2, 3, 4, 5, 6]}"#,
            ))
            .await
            .unwrap();
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
