//! The service's refusals: each its own code, sent as `{"error":{"code","message"}}` with the
//! HTTP status and an `x-ms-error-code` header, as Azure Attestation answers.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_attest_policy::{EvaluationError, PolicyParseError};
use coffer_dcap::QuoteVerificationError;
use serde_json::json;
use thiserror::Error;

use crate::store::PolicyStoreError;

/// Why the service refused a request.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("the request body is not a valid attestation request: {0}")]
    InvalidRequest(#[source] serde_json::Error),
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(#[source] axum::Error),
    #[error("the request body exceeds {limit} bytes")]
    RequestTooLarge { limit: usize },
    #[error("api-version {0:?} is not supported (2020-10-01, 2022-08-01, 2025-06-01)")]
    UnsupportedApiVersion(String),
    #[error("field {field} is not base64url (or base64): {source}")]
    BadBase64 {
        field: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("the quote is a {0} quote; this endpoint attests SGX quotes")]
    QuoteTeeUnsupported(&'static str),
    #[error("the quote has version {0}; Coffer verifies SGX quote version 3")]
    QuoteVersionUnsupported(u16),
    #[error("{0}")]
    Quote(#[source] QuoteVerificationError),
    #[error(
        "certificate chain: the PCK chain does not verify to any configured root ({roots} tried): {last}"
    )]
    UntrustedRoot {
        roots: usize,
        #[source]
        last: QuoteVerificationError,
    },
    #[error("collateral: none of the configured collateral is for FMSPC {fmspc}")]
    CollateralUnavailable { fmspc: String },
    #[error(
        "runtime data: SHA-256 of runtimeData.data is {computed}, REPORTDATA[0..32] is {reportdata}"
    )]
    RuntimeDataMismatch {
        computed: String,
        reportdata: String,
    },
    #[error("runtime data: dataType is JSON but data is not a JSON value: {0}")]
    RuntimeDataNotJson(#[source] serde_json::Error),
    #[error("{0}")]
    PolicyEvaluation(#[source] EvaluationError),
    #[error("{0}")]
    PolicyInvalid(#[source] PolicyParseError),
    #[error("the policy token: {0}")]
    PolicyTokenInvalid(&'static str),
    #[error("the policy token's signature: {0}")]
    PolicyTokenSignature(#[source] jsonwebtoken::errors::Error),
    #[error("this call needs an administrator's bearer token")]
    Unauthorized,
    #[error("the attestation type {0:?} is not supported (SgxEnclave)")]
    UnknownAttestationType(String),
    #[error("token signing failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error("{0}")]
    Store(#[source] PolicyStoreError),
    #[error("a worker task failed")]
    Worker,
    #[error("the system random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl ServiceError {
    /// The `code` and `x-ms-error-code`.
    pub fn code(&self) -> &'static str {
        use QuoteVerificationError as Q;
        match self {
            ServiceError::InvalidRequest(_) | ServiceError::BodyUnreadable(_) => "InvalidRequest",
            ServiceError::RequestTooLarge { .. } => "RequestTooLarge",
            ServiceError::UnsupportedApiVersion(_) => "UnsupportedApiVersion",
            ServiceError::BadBase64 { .. } => "InvalidBase64",
            ServiceError::QuoteTeeUnsupported(_) => "QuoteTeeUnsupported",
            ServiceError::QuoteVersionUnsupported(_) => "QuoteVersionUnsupported",
            ServiceError::Quote(q) => match q {
                Q::Parse(_) => "QuoteMalformed",
                Q::AttestationKeyInvalid | Q::QuoteSignature => "QuoteSignatureInvalid",
                Q::QeReportBinding | Q::QeReportDataNotZeroPadded => "QeReportBindingInvalid",
                Q::QeReportSignature | Q::PckKeyUnsupported => "QeReportSignatureInvalid",
                Q::CertificateExpired { .. } | Q::CertificateNotYetValid { .. } => {
                    "CertificateExpired"
                }
                Q::CertificateRevoked { .. } | Q::Revocation { .. } => "CertificateRevoked",
                Q::CollateralStale { .. } | Q::CollateralNotYetValid { .. } => "CollateralStale",
                Q::TcbRevoked { .. } => "TcbRevoked",
                Q::TcbLevelNotFound { .. } | Q::QeTcbLevelNotFound { .. } => "TcbLevelNotFound",
                Q::QeIdentityMismatch { .. } => "QeIdentityMismatch",
                Q::CollateralMalformed { .. }
                | Q::CrlIssuerMismatch { .. }
                | Q::CrlSignature { .. }
                | Q::CollateralChain { .. }
                | Q::CollateralChainUntrusted { .. }
                | Q::CollateralSignature { .. }
                | Q::CollateralUnsupported { .. }
                | Q::FmspcMismatch { .. }
                | Q::PceIdMismatch { .. }
                | Q::TcbStatusInvalid { .. } => "CollateralInvalid",
                Q::ChainUntrusted { .. } | Q::RootMissing { .. } | Q::RootNotSelfSigned { .. } => {
                    "UntrustedRoot"
                }
                _ => "CertificateChainInvalid",
            },
            ServiceError::UntrustedRoot { .. } => "UntrustedRoot",
            ServiceError::CollateralUnavailable { .. } => "CollateralUnavailable",
            ServiceError::RuntimeDataMismatch { .. } => "RuntimeDataMismatch",
            ServiceError::RuntimeDataNotJson(_) => "RuntimeDataNotJson",
            ServiceError::PolicyEvaluation(EvaluationError::Denied { .. })
            | ServiceError::PolicyEvaluation(EvaluationError::NotPermitted) => "PolicyDenied",
            ServiceError::PolicyEvaluation(_) => "PolicyEvaluationError",
            ServiceError::PolicyInvalid(_) => "PolicyInvalid",
            ServiceError::PolicyTokenInvalid(_) | ServiceError::PolicyTokenSignature(_) => {
                "PolicyTokenInvalid"
            }
            ServiceError::Unauthorized => "Unauthorized",
            ServiceError::UnknownAttestationType(_) => "UnknownAttestationType",
            ServiceError::Signing(_)
            | ServiceError::Store(_)
            | ServiceError::Worker
            | ServiceError::Random(_) => "InternalError",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServiceError::UnknownAttestationType(_) => StatusCode::NOT_FOUND,
            ServiceError::Signing(_)
            | ServiceError::Store(_)
            | ServiceError::Worker
            | ServiceError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        } else {
            tracing::info!(code, error = %self, "request refused");
        }
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert("x-ms-error-code", HeaderValue::from_static(code));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
