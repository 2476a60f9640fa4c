//! One answer, for every adapter, to "is this AWS error worth another try?" (as Vector's
//! `is_retriable_error`): timeouts, connection failures, malformed responses, 5xx, 429 and a
//! short list of throttling and transient codes are; construction failures, user-side dispatch
//! failures (bad endpoint, no credentials) and every other 4xx (missing bucket or stream, access
//! denied, invalid argument, a KMS key that cannot be used) are not: they need the setup fixed.
//!
//! The SDKs' own retries are off for Firehose and short for S3, so an error that reaches us is
//! one the caller must decide on; no two adapters may decide differently.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Error codes worth another try whatever their status: the SDK's own throttling and transient
/// lists (`aws_runtime::retries::classifiers`), S3's spellings, and Firehose's
/// `ServiceUnavailableException` (its throttling answer, sent with status 400).
pub const RETRYABLE_CODES: &[&str] = &[
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalFailureException",
    "InternalServerError",
    "InternalError",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestTimeTooSkewed",
    "OperationAborted",
];

/// What an SDK error comes to: a code to report, a message, the HTTP status if any answer came,
/// and whether a later attempt can succeed without a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The service's error code, else `HTTP <status>`, else the transport failure's kind
    /// (`Timeout`, `DispatchFailure`, ...).
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub retryable: bool,
}

/// Whether a service answer with this status and code is worth another try.
pub fn is_retryable_answer(status: u16, code: Option<&str>) -> bool {
    status >= 500 || status == 429 || code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

/// Classifies any SDK error (S3, Firehose, STS: they share the runtime's error type).
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let transport = |code: &str, retryable: bool| Classified {
        code: code.to_owned(),
        message: error_chain(err),
        status: None,
        retryable,
    };
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let error = service.err();
            let code = error.code().map(str::to_owned);
            Classified {
                retryable: is_retryable_answer(status, code.as_deref()),
                code: code.unwrap_or_else(|| format!("HTTP {status}")),
                message: error
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| error.to_string()),
                status: Some(status),
            }
        }
        SdkError::TimeoutError(_) => transport("Timeout", true),
        // A user error (bad endpoint, missing credentials) fails the same way every time.
        SdkError::DispatchFailure(dispatch) => transport("DispatchFailure", !dispatch.is_user()),
        // A response that could not be read (a cut connection, or an error status whose body
        // names no error code, such as a load balancer's 503): the call may work again.
        SdkError::ResponseError(response) => {
            let status = response.raw().status();
            let code = if status.is_success() {
                "ResponseError".to_string()
            } else {
                format!("HTTP {}", status.as_u16())
            };
            Classified {
                status: Some(status.as_u16()),
                ..transport(&code, true)
            }
        }
        SdkError::ConstructionFailure(_) => transport("ConstructionFailure", false),
        _ => transport("SdkError", true),
    }
}

/// An error and its sources, `: `-separated, without the SDK's debug dump of the response.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ConnectorError;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;

    type Err = SdkError<ListObjectsV2Error, HttpResponse>;

    fn answer(status: u16, code: Option<&str>) -> Err {
        let mut meta = ErrorMetadata::builder().message("m");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            ListObjectsV2Error::generic(meta.build()),
            HttpResponse::new(status.try_into().expect("valid status"), "".into()),
        )
    }

    #[test]
    fn throttling_and_transient_codes_are_retried_whatever_their_status() {
        for code in RETRYABLE_CODES {
            let c = classify(&answer(400, Some(code)));
            assert!(c.retryable, "{code}");
            assert_eq!(c.code, *code);
            assert_eq!(c.status, Some(400));
        }
        // The case the issue names: a 400 RequestTimeout, once final for listings.
        assert!(classify(&answer(400, Some("RequestTimeout"))).retryable);
        assert!(classify(&answer(503, Some("SlowDown"))).retryable);
    }

    #[test]
    fn server_errors_and_429_are_retried_with_or_without_a_code() {
        for status in [500, 502, 503, 504, 429] {
            let c = classify(&answer(status, None));
            assert!(c.retryable, "{status}");
            assert_eq!(c.code, format!("HTTP {status}"));
        }
        assert!(classify(&answer(500, Some("SomethingNew"))).retryable);
    }

    #[test]
    fn setup_errors_are_final() {
        for (status, code) in [
            (403, "AccessDenied"),
            (403, "AccessDeniedException"),
            (404, "NoSuchBucket"),
            (404, "NoSuchKey"),
            (400, "ResourceNotFoundException"),
            (400, "InvalidArgumentException"),
            (400, "InvalidKMSResourceException"),
            (400, "InvalidRequest"),
            (301, "PermanentRedirect"),
            (412, "PreconditionFailed"),
        ] {
            let c = classify(&answer(status, Some(code)));
            assert!(!c.retryable, "{status} {code}");
            assert_eq!(c.message, "m");
        }
        assert!(!classify(&answer(403, None)).retryable);
    }

    #[test]
    fn transport_failures_are_retried_but_not_user_errors() {
        let timeout: Err = SdkError::timeout_error("read timed out");
        let c = classify(&timeout);
        assert!(c.retryable);
        assert_eq!((c.code.as_str(), c.status), ("Timeout", None));

        let io: Err = SdkError::dispatch_failure(ConnectorError::io("reset".into()));
        assert!(classify(&io).retryable);
        let connect_timeout: Err =
            SdkError::dispatch_failure(ConnectorError::timeout("connect".into()));
        assert!(classify(&connect_timeout).retryable);
        let user: Err = SdkError::dispatch_failure(ConnectorError::user("bad endpoint".into()));
        let c = classify(&user);
        assert!(!c.retryable);
        assert_eq!(c.code, "DispatchFailure");

        let construction: Err = SdkError::construction_failure("bad input");
        assert!(!classify(&construction).retryable);

        let garbled: Err = SdkError::response_error(
            "no error code in body",
            HttpResponse::new(502.try_into().expect("valid status"), "<html>".into()),
        );
        let c = classify(&garbled);
        assert!(c.retryable);
        assert_eq!((c.code.as_str(), c.status), ("HTTP 502", Some(502)));
        let cut: Err = SdkError::response_error(
            "connection closed mid-body",
            HttpResponse::new(200.try_into().expect("valid status"), "".into()),
        );
        assert_eq!(classify(&cut).code, "ResponseError");
        assert!(classify(&cut).retryable);
    }
}
