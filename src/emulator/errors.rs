//! Google's error bodies, as `docs/architecture.md` records them: the Directory API's v1 JSON
//! error (`{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}`)
//! and the OAuth token endpoint's RFC 6749 error (`{"error", "error_description"}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the Directory API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// `global` for most errors, `usageLimits` for quota errors.
    pub domain: &'static str,
    /// `("header", "Authorization")` for authentication errors.
    pub location: Option<(&'static str, &'static str)>,
}

impl ApiError {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason,
            message: message.into(),
            domain: "global",
            location: None,
        }
    }

    /// 401 without a token.
    pub fn login_required() -> ApiError {
        ApiError {
            location: Some(("header", "Authorization")),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "required", "Login Required")
        }
    }

    /// 401 with an unknown or expired token.
    pub fn invalid_credentials() -> ApiError {
        ApiError {
            location: Some(("header", "Authorization")),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials")
        }
    }

    /// 403 for a caller who is not an admin, or a domain the customer does not own.
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not Authorized to access this resource/api",
        )
    }

    /// 403 for a token not asked with the scope the API needs.
    pub fn insufficient_scopes() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )
    }

    /// 403 `accessNotConfigured`: the API is not enabled in the caller's Cloud project.
    pub fn access_not_configured(message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "accessNotConfigured", message)
    }

    /// 404 for an unknown user.
    pub fn user_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: userKey",
        )
    }

    /// 404 for a path the API does not have (a typo in a URL).
    pub fn no_such_method() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "notFound", "Not Found")
    }

    /// A quota error (`usageLimits` domain): 403 `userRateLimitExceeded` or
    /// `quotaExceeded`, 429 `rateLimitExceeded`.
    pub fn usage_limit(status: StatusCode, reason: &'static str, message: &str) -> ApiError {
        ApiError {
            domain: "usageLimits",
            ..ApiError::new(status, reason, message)
        }
    }

    /// 503 `backendError` (wording UNVERIFIED for the Directory API).
    pub fn backend_error() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "Service unavailable. Please try again",
        )
    }

    /// 404 for an unknown org unit.
    pub fn org_unit_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "notFound", "Org unit not found")
    }

    /// A write to a user created moments ago. Google documents the message but not the
    /// status; 412 is what a public test fixture shows (UNVERIFIED, see README).
    pub fn creation_not_complete() -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "conditionNotMet",
            "User creation is not complete.",
        )
    }

    /// 412 `conditionNotMet` with Google's message (licensing: none left, already held).
    pub fn condition_not_met(message: &str) -> ApiError {
        ApiError::new(StatusCode::PRECONDITION_FAILED, "conditionNotMet", message)
    }

    /// 404 `notFound` with Google's message.
    pub fn not_found(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "notFound", message)
    }

    /// 409 for a taken address or alias.
    pub fn duplicate() -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "duplicate", "Entity already exists.")
    }

    /// 400 `invalid` with Google's message.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// 400 `required` for a missing field.
    pub fn required(field: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "required",
            format!("Required parameter: [resource.{field}]"),
        )
    }

    /// 400 `badRequest` for a wrong or missing parameter.
    pub fn bad_request() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "badRequest", "Bad Request")
    }

    /// The JSON body Google sends.
    pub fn body(&self) -> serde_json::Value {
        let mut item = json!({
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
        });
        if let Some((location_type, location)) = self.location {
            item["locationType"] = json!(location_type);
            item["location"] = json!(location);
        }
        json!({"error": {"code": self.status.as_u16(), "message": self.message, "errors": [item]}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\"",
                ),
            );
        }
        response
    }
}

/// An error answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
}

impl TokenError {
    pub fn invalid_signature() -> TokenError {
        TokenError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: "Invalid JWT Signature.",
        }
    }

    pub fn not_short_lived() -> TokenError {
        TokenError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.",
        }
    }

    pub fn unauthorized_client() -> TokenError {
        TokenError {
            status: StatusCode::UNAUTHORIZED,
            error: "unauthorized_client",
            description: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        }
    }

    pub fn invalid_scope() -> TokenError {
        TokenError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_scope",
            description: "Invalid OAuth scope or ID token audience provided.",
        }
    }

    pub fn bad_request(description: &'static str) -> TokenError {
        TokenError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_have_googles_shape() {
        assert_eq!(
            ApiError::duplicate().body(),
            json!({"error": {"code": 409, "message": "Entity already exists.", "errors": [
                {"message": "Entity already exists.", "domain": "global", "reason": "duplicate"}]}})
        );
        let auth = ApiError::login_required().body();
        assert_eq!(auth["error"]["errors"][0]["location"], "Authorization");
        assert_eq!(auth["error"]["errors"][0]["reason"], "required");
    }
}
