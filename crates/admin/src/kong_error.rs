//! Admin API error bodies in Kong's JSON shape. Every error leaves through here, so none is a
//! bare 500 without a body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `{"message": …}` with a status.
pub fn message(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "message": msg.into() }))).into_response()
}

/// Kong's DB-less refusal of writes: 405, code 12 "operation unsupported".
pub fn operation_unsupported(verb: &str, entity: &str) -> Response {
    unsupported_message(format!(
        "cannot {verb} '{entity}' entities when not using a database"
    ))
}

/// The off strategy's `*_by_field` refusal: "cannot update 'services' entities by 'name' …".
pub fn operation_unsupported_by(verb: &str, entity: &str, field: &str) -> Response {
    unsupported_message(format!(
        "cannot {verb} '{entity}' entities by '{field}' when not using a database"
    ))
}

fn unsupported_message(message: String) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({
            "code": 12,
            "name": "operation unsupported",
            "message": message,
        })),
    )
        .into_response()
}

pub fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}
