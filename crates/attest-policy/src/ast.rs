//! A parsed policy.

use crate::lexer::Position;

/// The grammar version a policy declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1_0,
    V1_1,
}

/// The three sections, in the order they must appear and are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Configuration,
    Authorization,
    Issuance,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Configuration => "configurationrules",
            Section::Authorization => "authorizationrules",
            Section::Issuance => "issuancerules",
        }
    }
}

/// A policy: its version and the rules of each section, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub version: Version,
    pub configuration: Vec<Rule>,
    pub authorization: Vec<Rule>,
    pub issuance: Vec<Rule>,
}

/// `conditions => action;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub at: Position,
    /// Joined by `&&`; empty for `=> action;`, which always fires once.
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// `var:[type==…, value op …, issuer==…]`: matches one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub at: Position,
    pub var: Option<String>,
    /// The claim type, deprecated aliases already resolved.
    pub ty: Option<StrMatch>,
    pub value: Option<ValueMatch>,
    /// Without it, only the service's and the policy's own claims match (see
    /// [`crate::CUSTOM_CLAIM_ISSUER`]).
    pub issuer: Option<StrMatch>,
}

/// `== "s"` (equal) or `!= "s"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrMatch {
    pub equal: bool,
    pub s: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `Some(true)` for `==`, `Some(false)` for `!=`, `None` for the orderings.
    pub fn as_equality(self) -> Option<bool> {
        match self {
            CmpOp::Eq => Some(true),
            CmpOp::Ne => Some(false),
            _ => None,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// `value op literal`. Orderings only ever carry an integer literal (the parser refuses others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMatch {
    pub op: CmpOp,
    pub lit: Value,
}

/// A claim value: what MAA's SGX claims hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    /// The value as JSON (for a token's claims).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Bool(b) => serde_json::Value::Bool(*b),
        }
    }

    /// The value as a claim type name (`issue(type=c.value, …)`).
    pub fn to_type_name(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Permit,
    Deny {
        at: Position,
    },
    /// Adds a claim to the incoming set only (later rules see it; the token does not).
    Add(ClaimExpr),
    /// Adds a claim to the incoming set and to the token.
    Issue(ClaimExpr),
    /// Sets a property of the evaluation (1.1 `configurationrules`).
    IssueProperty(ClaimExpr),
}

/// The claim an action makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimExpr {
    /// `claim=c`: a copy of the matched claim.
    Claim(String),
    /// `type=…, value=…`
    TypeValue { ty: Expr, value: Expr },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Lit(Value),
    /// `c.type`, `c.value`, `c.issuer`
    Ref {
        var: String,
        field: Field,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Type,
    Value,
    Issuer,
}
