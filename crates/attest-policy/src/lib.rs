//! # coffer-attest-policy: Azure Attestation's policy language
//!
//! Coffer's implementation of the claim-rule language Azure Attestation (MAA) evaluates, versions
//! 1.0 and 1.1:
//!
//! ```text
//! version=1.1;
//! configurationrules { => issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault"); };
//! authorizationrules {
//!     [type=="x-ms-sgx-is-debuggable", value==true] => deny();
//!     c:[type=="x-ms-sgx-mrsigner", value=="…"] => permit();
//! };
//! issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value); };
//! ```
//!
//! [`parse`] turns text into a [`Policy`] or a [`PolicyParseError`] naming the line and column;
//! [`Policy::evaluate`] takes the incoming claims and answers the issued claims, or why the
//! request is not authorized. [`policy_hash`] is MAA's `x-ms-policy-hash`.
//!
//! What this crate owns: the language and its evaluation. What it must never do: trust a claim
//! the caller supplied as if the service had derived it. Client claims carry the issuer
//! [`CUSTOM_CLAIM_ISSUER`] and conditions without `issuer==…` do not match them.
//!
//! Limits (each a denial-of-service bound): [`MAX_POLICY_SIZE`] bytes of text,
//! [`MAX_RULES`] rules, [`MAX_CONDITIONS`] conditions a rule, [`MAX_MATCH_STEPS`] comparisons
//! an evaluation. Parsing never panics (fuzz target `attest_policy`).

#![forbid(unsafe_code)]

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use ast::{
    Action, ClaimExpr, CmpOp, Condition, Expr, Field, Policy, Rule, Section, StrMatch, Value,
    ValueMatch, Version,
};
pub use error::{EvaluationError, ParseErrorKind, PolicyParseError};
pub use eval::{Claim, Evaluation, MAX_CLAIMS, MAX_INCOMING_CLAIMS, MAX_MATCH_STEPS};
pub use lexer::{MAX_TOKEN_LEN, Position};
pub use parser::{MAX_CONDITIONS, MAX_POLICY_SIZE, MAX_RULES, MAX_TOKENS, parse, resolve_alias};

/// The issuer of the claims the service derives from verified evidence.
pub const SERVICE_ISSUER: &str = "AttestationService";
/// The issuer forced onto every claim the caller supplies (runtime or init-time data).
pub const CUSTOM_CLAIM_ISSUER: &str = "CustomClaimIssuer";
/// The issuer of the claims the policy's own `add`/`issue` actions make.
pub const POLICY_ISSUER: &str = "AttestationPolicy";

/// The policy a service applies until an administrator sets one: MAA's default SGX policy
/// (version 1.1), which permits every verified quote and issues the deprecated claim names
/// beside the `x-ms-sgx-*` ones.
pub const DEFAULT_SGX_POLICY: &str = r#"version= 1.1;
configurationrules{
	=> issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");
};
authorizationrules{
	=> permit();
};
issuancerules{
	c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
	c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
	c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
	c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
	c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
	c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
"#;

/// MAA's `x-ms-policy-hash`: BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy))))), unpadded.
pub fn policy_hash(policy_text: &str) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(policy_text.as_bytes());
    URL_SAFE_NO_PAD.encode(Sha256::digest(encoded.as_bytes()))
}
