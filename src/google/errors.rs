//! What can go wrong in a call to Google, and the one decision of what happens next: retry
//! with backoff, retry after the time Google gave, refresh the token, or fail for good.
//! Pure: decided from the error alone (`docs/architecture.md`, "Retries").

use std::time::Duration;

/// A call that went wrong, in the terms the decision needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Google answered with an error body.
    #[error("Google answered {status} {reason}: {message}")]
    Api {
        status: u16,
        reason: String,
        message: String,
        /// The `Retry-After` of the answer, if any.
        retry_after: Option<Duration>,
    },
    /// The request was never sent (no connection): nothing happened at Google.
    #[error("cannot reach Google: {0}")]
    Unreachable(String),
    /// The request was sent and no answer came (connection closed, timeout): a write may
    /// or may not have been applied.
    #[error("no answer from Google, the call may or may not have been applied: {0}")]
    NoAnswer(String),
    /// The token could not be obtained.
    #[error("cannot get an access token: {0}")]
    Token(String),
    /// An answer that could not be read.
    #[error("unreadable answer from Google: {0}")]
    Unreadable(String),
}

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Transient: wait (exponential backoff with jitter) and try again.
    Retry,
    /// Transient, and Google said how long to wait.
    RetryAfter(Duration),
    /// The token was refused: get a fresh one and try once more.
    RefreshToken,
    /// Retrying cannot help (or, for a write without an answer, must not happen blindly).
    Fail,
}

/// Reasons of 403 answers that mean "too fast", not "not allowed".
const RATE_REASONS: &[&str] = &[
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "quotaExceeded",
];

/// The window Google meters its quota over.
const QUOTA_WINDOW: Duration = Duration::from_secs(60);

/// The message Google gives for writes to a user created moments ago.
const CREATION_NOT_COMPLETE: &str = "User creation is not complete";

impl CallError {
    /// Whether Google said the caller goes too fast.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            CallError::Api { status: 429, .. } => true,
            CallError::Api {
                status: 403,
                reason,
                ..
            } => RATE_REASONS.contains(&reason.as_str()),
            _ => false,
        }
    }

    /// Whether the answer measures Google's quota: "too fast" with no `Retry-After`, or
    /// one within a minute (the quota's window). A refusal that asks for a longer wait
    /// (a proxy or an outage saying "come back in an hour") says nothing of the quota: the
    /// call waits as told, and the governor keeps its pace.
    pub fn is_quota_signal(&self) -> bool {
        match self {
            CallError::Api { retry_after, .. } if self.is_rate_limit() => {
                retry_after.is_none_or(|after| after <= QUOTA_WINDOW)
            }
            _ => false,
        }
    }

    /// The HTTP status of an answered error.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Decides what follows `error` for a call that writes (`is_write`) or only reads.
pub fn next_step(error: &CallError, is_write: bool) -> Next {
    let transient =
        |retry_after: &Option<Duration>| retry_after.map_or(Next::Retry, Next::RetryAfter);
    match error {
        CallError::Api { status: 401, .. } => Next::RefreshToken,
        CallError::Api {
            message,
            retry_after,
            ..
        } if message.contains(CREATION_NOT_COMPLETE) => transient(retry_after),
        e @ CallError::Api { retry_after, .. } if e.is_rate_limit() => transient(retry_after),
        CallError::Api {
            status: 408 | 500 | 502 | 503 | 504,
            retry_after,
            ..
        } => transient(retry_after),
        CallError::Api { .. } => Next::Fail,
        CallError::Unreachable(_) => Next::Retry,
        CallError::NoAnswer(_) if is_write => Next::Fail,
        CallError::NoAnswer(_) => Next::Retry,
        CallError::Token(_) | CallError::Unreadable(_) => Next::Fail,
    }
}

/// Reads Google's error body (`{"error": {"code", "message", "errors": [{"reason"}]}}`);
/// an unreadable body still gives the status.
pub fn from_answer(status: u16, body: &[u8], retry_after: Option<Duration>) -> CallError {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    let message = error["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let reason = error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
        .unwrap_or("unknown")
        .to_owned();
    CallError::Api {
        status,
        reason,
        message,
        retry_after,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An API error as Google would answer it (also used by the executor's tests).
    pub(crate) fn api(status: u16, reason: &str, message: &str) -> CallError {
        CallError::Api {
            status,
            reason: reason.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Every row of the error table of `docs/architecture.md`, and the transport failures.
    #[test]
    fn the_error_table() {
        #[rustfmt::skip]
        let rows: &[(CallError, bool, Next)] = &[
            (api(409, "duplicate", "Entity already exists."), true, Next::Fail),
            (api(404, "notFound", "Resource Not Found: userKey"), false, Next::Fail),
            (api(400, "invalid", "Invalid Input: INVALID_OU_ID"), true, Next::Fail),
            (api(400, "invalid", "Invalid Input: Inconsistent Orgunit id and path in request - x, y"), true, Next::Fail),
            (api(400, "invalid", "Invalid Given/Family Name: FamilyName"), true, Next::Fail),
            (api(400, "required", "Required parameter: [resource.name.field]"), true, Next::Fail),
            (api(400, "invalid", "Invalid Input"), false, Next::Fail),
            (api(400, "badRequest", "Bad Request"), false, Next::Fail),
            (api(403, "forbidden", "Not Authorized to access this resource/api"), false, Next::Fail),
            (api(403, "accessNotConfigured", "Access Not Configured"), false, Next::Fail),
            (api(403, "userRateLimitExceeded", "User Rate Limit Exceeded"), true, Next::Retry),
            (api(403, "quotaExceeded", "Quota Exceeded"), true, Next::Retry),
            (api(429, "rateLimitExceeded", "Rate Limit Exceeded"), true, Next::Retry),
            (api(403, "dailyLimitExceeded", "Daily Limit Exceeded"), false, Next::Fail),
            (api(401, "required", "Login Required"), false, Next::RefreshToken),
            (api(401, "authError", "Invalid Credentials"), true, Next::RefreshToken),
            (api(500, "backendError", "Backend Error"), true, Next::Retry),
            (api(503, "backendError", "Service unavailable. Please try again"), true, Next::Retry),
            (api(502, "unknown", "Bad Gateway"), false, Next::Retry),
            (api(504, "unknown", "Gateway Timeout"), false, Next::Retry),
            (api(408, "unknown", "Request Timeout"), false, Next::Retry),
            (api(412, "conditionNotMet", "User creation is not complete."), true, Next::Retry),
            (api(400, "invalid", "User creation is not complete."), true, Next::Retry),
            (api(412, "conditionNotMet", "Precondition Failed"), true, Next::Fail),
            (CallError::Unreachable("connection refused".into()), true, Next::Retry),
            (CallError::NoAnswer("connection closed".into()), false, Next::Retry),
            (CallError::NoAnswer("connection closed".into()), true, Next::Fail),
            (CallError::Token("invalid_grant".into()), false, Next::Fail),
            (CallError::Unreadable("eof".into()), false, Next::Fail),
        ];
        for (error, is_write, expected) in rows {
            assert_eq!(
                next_step(error, *is_write),
                *expected,
                "{error} (write: {is_write})"
            );
        }
    }

    #[test]
    fn only_a_refusal_within_the_quota_window_measures_the_quota() {
        let with_after = |status, reason: &str, secs: Option<u64>| CallError::Api {
            status,
            reason: reason.into(),
            message: String::new(),
            retry_after: secs.map(Duration::from_secs),
        };
        assert!(with_after(429, "rateLimitExceeded", None).is_quota_signal());
        assert!(with_after(403, "userRateLimitExceeded", Some(30)).is_quota_signal());
        assert!(with_after(429, "rateLimitExceeded", Some(60)).is_quota_signal());
        assert!(!with_after(429, "rateLimitExceeded", Some(3600)).is_quota_signal());
        assert!(!with_after(403, "forbidden", None).is_quota_signal());
        assert!(!with_after(503, "backendError", None).is_quota_signal());
    }

    #[test]
    fn retry_after_is_honoured() {
        let error = CallError::Api {
            status: 429,
            reason: "rateLimitExceeded".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            next_step(&error, true),
            Next::RetryAfter(Duration::from_secs(7))
        );
        assert!(error.is_rate_limit());
    }

    #[test]
    fn error_bodies_are_read_and_garbage_keeps_the_status() {
        let body = br#"{"error":{"code":409,"message":"Entity already exists.","errors":[{"message":"Entity already exists.","domain":"global","reason":"duplicate"}]}}"#;
        assert_eq!(
            from_answer(409, body, None),
            api(409, "duplicate", "Entity already exists.")
        );
        let garbage = from_answer(502, b"<html>bad gateway</html>", None);
        assert_eq!(garbage.status(), Some(502));
        assert_eq!(next_step(&garbage, true), Next::Retry);
    }
}
