//! Why a policy was refused (parsing) or a request was not authorized (evaluation).

use thiserror::Error;

use crate::lexer::Position;

/// A malformed policy: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("policy line {}, column {}: {kind}", at.line, at.column)]
pub struct PolicyParseError {
    pub at: Position,
    pub kind: ParseErrorKind,
}

/// What is wrong at a [`PolicyParseError`]'s position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("the policy is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("more than {limit} tokens")]
    TooManyTokens { limit: usize },
    #[error("a name or string longer than {limit} bytes")]
    TokenTooLong { limit: usize },
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("malformed number {0:?}")]
    BadNumber(String),
    #[error("an integer out of the 64-bit range: {0}")]
    IntegerOutOfRange(String),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("unknown escape in a string (only \\\" and \\\\ are allowed)")]
    BadEscape,
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("expected {expected}, found the end of the policy")]
    UnexpectedEnd { expected: &'static str },
    #[error("unsupported policy version {0} (supported: 1.0, 1.1)")]
    UnsupportedVersion(String),
    #[error(
        "unknown section `{0}` (expected configurationrules, authorizationrules or issuancerules)"
    )]
    UnknownSection(String),
    #[error("section `{0}` appears twice")]
    DuplicateSection(&'static str),
    #[error("section configurationrules needs policy version 1.1")]
    ConfigurationRulesNeedV11,
    #[error(
        "sections must come in the order configurationrules, authorizationrules, issuancerules"
    )]
    SectionOrder,
    #[error("the policy has no authorizationrules section")]
    MissingAuthorizationRules,
    #[error("more than {limit} rules in the policy")]
    TooManyRules { limit: usize },
    #[error("more than {limit} conditions in one rule")]
    TooManyConditions { limit: usize },
    #[error("unknown claim property `{0}` (expected type, value or issuer)")]
    UnknownProperty(String),
    #[error("`{0}` is given twice in one condition")]
    DuplicateProperty(&'static str),
    #[error("operator {op} applies to integers only, not to {what}")]
    OrderingOnNonInteger {
        op: &'static str,
        what: &'static str,
    },
    #[error("claim property `{0}` is a string: compare it with == or != and a string")]
    PropertyNotString(&'static str),
    #[error("the claim variable `{0}` is bound twice in one rule")]
    DuplicateVariable(String),
    #[error("the claim variable `{0}` is not bound by this rule's conditions")]
    UnboundVariable(String),
    #[error("unknown action `{0}` (expected permit, deny, add, issue or issueproperty)")]
    UnknownAction(String),
    #[error("action `{action}` is not allowed in {section}")]
    ActionNotAllowed {
        action: &'static str,
        section: &'static str,
    },
    #[error("unknown argument `{0}` (expected type, value or claim)")]
    UnknownArgument(String),
    #[error("`{0}` needs both type= and value=")]
    MissingArgument(&'static str),
    #[error("text after the end of the policy")]
    TrailingText,
}

/// Evaluation did not authorize the request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvaluationError {
    /// A `deny()` rule matched.
    #[error("policy evaluation: the deny() rule at line {}, column {} matched", at.line, at.column)]
    Denied { at: Position },
    /// No `permit()` rule matched.
    #[error("policy evaluation: no permit() rule of authorizationrules matched")]
    NotPermitted,
    /// The incoming claims are too many to evaluate.
    #[error("policy evaluation: {count} incoming claims exceed the limit of {limit}")]
    TooManyClaims { count: usize, limit: usize },
    /// Matching conditions against claims took more steps than allowed.
    #[error("policy evaluation: more than {limit} condition matches tried")]
    TooComplex { limit: usize },
}
