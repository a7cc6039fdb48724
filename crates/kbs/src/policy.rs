//! Release policies: the grammar Azure Key Vault accepts for secure key release, and their
//! evaluation against an attestation token's claims.
//!
//! ```json
//! {"version": "1.0.0",
//!  "anyOf": [{"authority": "https://attest.example/",
//!             "allOf": [{"claim": "x-ms-sgx-mrenclave", "equals": "…"},
//!                       {"claim": "x-ms-sgx-is-debuggable", "equals": false},
//!                       {"anyOf": [{"claim": "x-ms-sgx-svn", "greaterOrEquals": 2}, …]}]}]}
//! ```
//!
//! - `version` may be missing; when present it is `"1.0.0"`.
//! - Each member of the top-level `anyOf` names an `authority` (the token issuer; with or
//!   without a trailing slash, the same issuer) and exactly one of `allOf` / `anyOf`, whose
//!   members are conditions or nested `allOf` / `anyOf` groups. The policy is met when, for some
//!   member whose authority is the token's issuer, its group is met.
//! - A condition is `{"claim": "a.b.c", OP: value}` with OP one of `equals`, `notEquals`,
//!   `less`, `lessOrEquals`, `greater`, `greaterOrEquals`, `exists`; or Key Vault's legacy
//!   form `{"claim": "a.b.c", "condition": OP, "value": value}`. The claim path names a
//!   top-level claim of that exact name, or else walks nested objects along the dots.
//! - Values are strings, numbers or booleans; arrays, objects and null are refused when the
//!   policy is created. The ordering operators take numbers; `exists` takes a boolean (`true`:
//!   the claim is present; `false`: it is absent).
//! - `equals` / `notEquals` with a string value and a boolean or number claim compare the
//!   claim's JSON text (`"false"` equals `false`, `"2"` equals `2`), as Key Vault's legacy
//!   policies are written; numbers compare by value.
//! - A condition on a missing claim is not met (`notEquals` included); only `exists: false`
//!   asks for absence.
//! - Limits: [`MAX_POLICY_BYTES`] of JSON, [`MAX_DEPTH`] nested groups, [`MAX_CONDITIONS`]
//!   conditions, [`MAX_AUTHORITIES`] authorities, [`MAX_STRING`] bytes per claim path or value.
//!   Unknown members are refused, so that a misspelt operator is an error, not a condition that
//!   is never checked.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

/// The largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 16 * 1024;
/// The deepest nesting of `allOf` / `anyOf` groups below an authority.
pub const MAX_DEPTH: usize = 8;
/// The most conditions in one policy.
pub const MAX_CONDITIONS: usize = 256;
/// The most authorities in one policy.
pub const MAX_AUTHORITIES: usize = 16;
/// The longest authority, claim path or string value, in bytes.
pub const MAX_STRING: usize = 1024;

/// Why a release policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is {len} bytes, more than {MAX_POLICY_BYTES}")]
    TooLarge { len: usize },
    #[error("the policy is not JSON: {reason}")]
    Json { reason: String },
    #[error("{at}: expected {expected}")]
    Shape { at: String, expected: &'static str },
    #[error("{at}: unknown member {member:?}")]
    UnknownMember { at: String, member: String },
    #[error("{at}: missing member {member:?}")]
    MissingMember { at: String, member: &'static str },
    #[error("unsupported policy version {version:?} (want \"1.0.0\")")]
    Version { version: String },
    #[error("{at}: a condition takes exactly one operator, found {found}")]
    Operators { at: String, found: usize },
    #[error("{at}: unknown operator {operator:?}")]
    UnknownOperator { at: String, operator: String },
    #[error("{at}: {operator} takes {expected}")]
    ValueType {
        at: String,
        operator: &'static str,
        expected: &'static str,
    },
    #[error("{at}: {what} is empty")]
    Empty { at: String, what: &'static str },
    #[error("{at}: longer than {MAX_STRING} bytes")]
    StringTooLong { at: String },
    #[error("groups nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_CONDITIONS} conditions")]
    TooManyConditions,
    #[error("more than {MAX_AUTHORITIES} authorities")]
    TooManyAuthorities,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Less,
    LessOrEquals,
    Greater,
    GreaterOrEquals,
    Exists,
}

impl Operator {
    const ALL: [Operator; 7] = [
        Operator::Equals,
        Operator::NotEquals,
        Operator::Less,
        Operator::LessOrEquals,
        Operator::Greater,
        Operator::GreaterOrEquals,
        Operator::Exists,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::Equals => "equals",
            Operator::NotEquals => "notEquals",
            Operator::Less => "less",
            Operator::LessOrEquals => "lessOrEquals",
            Operator::Greater => "greater",
            Operator::GreaterOrEquals => "greaterOrEquals",
            Operator::Exists => "exists",
        }
    }

    fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// A condition's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    Number(Number),
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::String(s) => write!(f, "{}", Value::String(s.clone())),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One condition on one claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub claim: String,
    pub operator: Operator,
    pub value: Scalar,
}

/// A group of conditions and nested groups.
#[derive(Debug, Clone, PartialEq)]
pub enum Group {
    AllOf(Vec<Node>),
    AnyOf(Vec<Node>),
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Condition(Condition),
    Group(Group),
}

/// The conditions one authority's tokens must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorityRule {
    /// The issuer, without trailing slashes.
    pub authority: String,
    pub group: Group,
}

/// A validated release policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasePolicy {
    pub version: Option<String>,
    pub rules: Vec<AuthorityRule>,
}

/// The outcome of evaluating a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The token meets the policy.
    Release,
    /// The token's issuer is none of the policy's authorities.
    UnknownAuthority,
    /// The issuer is an authority, but its conditions are not met: the first one that failed.
    NotMet { reason: String },
}

/// An issuer or authority with its trailing slashes removed: `https://a/` and `https://a` are
/// one issuer.
pub fn normalize_authority(s: &str) -> &str {
    s.trim_end_matches('/')
}

struct Parser {
    conditions: usize,
}

fn object<'v>(
    v: &'v Value,
    at: &str,
    expected: &'static str,
) -> Result<&'v Map<String, Value>, PolicyError> {
    v.as_object().ok_or_else(|| PolicyError::Shape {
        at: at.to_owned(),
        expected,
    })
}

fn bounded_string(v: &Value, at: &str, expected: &'static str) -> Result<String, PolicyError> {
    let s = v.as_str().ok_or_else(|| PolicyError::Shape {
        at: at.to_owned(),
        expected,
    })?;
    if s.len() > MAX_STRING {
        return Err(PolicyError::StringTooLong { at: at.to_owned() });
    }
    Ok(s.to_owned())
}

impl Parser {
    fn group_members(
        &mut self,
        members: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Vec<Node>, PolicyError> {
        // The authority's own group is at depth 1; MAX_DEPTH more may nest below it.
        if depth > MAX_DEPTH + 1 {
            return Err(PolicyError::TooDeep);
        }
        let list = members.as_array().ok_or_else(|| PolicyError::Shape {
            at: at.to_owned(),
            expected: "an array of conditions and groups",
        })?;
        if list.is_empty() {
            return Err(PolicyError::Empty {
                at: at.to_owned(),
                what: "the group",
            });
        }
        list.iter()
            .enumerate()
            .map(|(i, member)| self.node(member, &format!("{at}[{i}]"), depth))
            .collect()
    }

    /// `{"allOf": […]}` or `{"anyOf": […]}` from `map`, given the members `map` may also have.
    fn group(
        &mut self,
        map: &Map<String, Value>,
        at: &str,
        depth: usize,
        also: &[&str],
    ) -> Result<Group, PolicyError> {
        for member in map.keys() {
            if member != "allOf" && member != "anyOf" && !also.contains(&member.as_str()) {
                return Err(PolicyError::UnknownMember {
                    at: at.to_owned(),
                    member: member.chars().take(64).collect(),
                });
            }
        }
        match (map.get("allOf"), map.get("anyOf")) {
            (Some(all), None) => Ok(Group::AllOf(self.group_members(
                all,
                &format!("{at}.allOf"),
                depth + 1,
            )?)),
            (None, Some(any)) => Ok(Group::AnyOf(self.group_members(
                any,
                &format!("{at}.anyOf"),
                depth + 1,
            )?)),
            (Some(_), Some(_)) => Err(PolicyError::Shape {
                at: at.to_owned(),
                expected: "one of allOf and anyOf, not both",
            }),
            (None, None) => Err(PolicyError::MissingMember {
                at: at.to_owned(),
                member: "allOf or anyOf",
            }),
        }
    }

    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Result<Node, PolicyError> {
        let map = object(v, at, "a condition or a group")?;
        if map.contains_key("claim") {
            self.condition(map, at).map(Node::Condition)
        } else {
            self.group(map, at, depth, &[]).map(Node::Group)
        }
    }

    fn condition(&mut self, map: &Map<String, Value>, at: &str) -> Result<Condition, PolicyError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(PolicyError::TooManyConditions);
        }
        let claim = bounded_string(
            &map["claim"],
            &format!("{at}.claim"),
            "a claim name (string)",
        )?;
        if claim.is_empty() {
            return Err(PolicyError::Empty {
                at: format!("{at}.claim"),
                what: "the claim name",
            });
        }
        let (operator, value) = if let Some(condition) = map.get("condition") {
            // Legacy form: {"claim", "condition": OP, "value"}.
            for member in map.keys() {
                if !["claim", "condition", "value"].contains(&member.as_str()) {
                    return Err(PolicyError::UnknownMember {
                        at: at.to_owned(),
                        member: member.chars().take(64).collect(),
                    });
                }
            }
            let name = bounded_string(
                condition,
                &format!("{at}.condition"),
                "an operator name (string)",
            )?;
            let operator =
                Operator::from_name(&name).ok_or_else(|| PolicyError::UnknownOperator {
                    at: at.to_owned(),
                    operator: name.chars().take(64).collect(),
                })?;
            let value = map.get("value").ok_or_else(|| PolicyError::MissingMember {
                at: at.to_owned(),
                member: "value",
            })?;
            (operator, value)
        } else {
            let mut found = None;
            let mut count = 0;
            for (member, value) in map {
                if member == "claim" {
                    continue;
                }
                let operator =
                    Operator::from_name(member).ok_or_else(|| PolicyError::UnknownOperator {
                        at: at.to_owned(),
                        operator: member.chars().take(64).collect(),
                    })?;
                count += 1;
                found = Some((operator, value));
            }
            match found {
                Some(found) if count == 1 => found,
                _ => {
                    return Err(PolicyError::Operators {
                        at: at.to_owned(),
                        found: count,
                    });
                }
            }
        };
        let wrong = |expected| PolicyError::ValueType {
            at: at.to_owned(),
            operator: operator.name(),
            expected,
        };
        let value = match (operator, value) {
            (Operator::Exists, Value::Bool(b)) => Scalar::Bool(*b),
            (Operator::Exists, _) => return Err(wrong("a boolean")),
            (Operator::Equals | Operator::NotEquals, Value::String(s)) => {
                Scalar::String(bounded_string(&Value::String(s.clone()), at, "a string")?)
            }
            (Operator::Equals | Operator::NotEquals, Value::Bool(b)) => Scalar::Bool(*b),
            (_, Value::Number(n)) => Scalar::Number(n.clone()),
            (Operator::Equals | Operator::NotEquals, _) => {
                return Err(wrong(
                    "a string, a number or a boolean (not an array, object or null)",
                ));
            }
            _ => return Err(wrong("a number")),
        };
        Ok(Condition {
            claim,
            operator,
            value,
        })
    }
}

impl ReleasePolicy {
    /// Parses and validates a policy document.
    pub fn parse(bytes: &[u8]) -> Result<ReleasePolicy, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { len: bytes.len() });
        }
        // serde_json refuses trailing data and bounds its own recursion.
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| PolicyError::Json {
            reason: e.to_string(),
        })?;
        let map = object(&doc, "policy", "a JSON object")?;
        for member in map.keys() {
            if member != "version" && member != "anyOf" {
                return Err(PolicyError::UnknownMember {
                    at: "policy".to_owned(),
                    member: member.chars().take(64).collect(),
                });
            }
        }
        let version = match map.get("version") {
            None => None,
            Some(v) => {
                let v = bounded_string(v, "policy.version", "a version string")?;
                if v != "1.0.0" {
                    return Err(PolicyError::Version { version: v });
                }
                Some(v)
            }
        };
        let rules = map.get("anyOf").ok_or_else(|| PolicyError::MissingMember {
            at: "policy".to_owned(),
            member: "anyOf",
        })?;
        let rules = rules.as_array().ok_or_else(|| PolicyError::Shape {
            at: "policy.anyOf".to_owned(),
            expected: "an array of authorities",
        })?;
        if rules.is_empty() {
            return Err(PolicyError::Empty {
                at: "policy.anyOf".to_owned(),
                what: "the list of authorities",
            });
        }
        if rules.len() > MAX_AUTHORITIES {
            return Err(PolicyError::TooManyAuthorities);
        }
        let mut parser = Parser { conditions: 0 };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let at = format!("policy.anyOf[{i}]");
                let map = object(rule, &at, "an object with authority and allOf or anyOf")?;
                let authority = map
                    .get("authority")
                    .ok_or_else(|| PolicyError::MissingMember {
                        at: at.clone(),
                        member: "authority",
                    })?;
                let authority = bounded_string(
                    authority,
                    &format!("{at}.authority"),
                    "an issuer URL (string)",
                )?;
                let authority = normalize_authority(&authority).to_owned();
                if authority.is_empty() {
                    return Err(PolicyError::Empty {
                        at: format!("{at}.authority"),
                        what: "the authority",
                    });
                }
                let group = parser.group(map, &at, 0, &["authority"])?;
                Ok(AuthorityRule { authority, group })
            })
            .collect::<Result<_, _>>()?;
        Ok(ReleasePolicy { version, rules })
    }

    /// The authorities (issuers) the policy names, without trailing slashes.
    pub fn authorities(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.authority.as_str())
    }

    /// Evaluates the policy for a token from `issuer` with `claims` (the token's payload).
    pub fn evaluate(&self, issuer: &str, claims: &Value) -> Decision {
        let issuer = normalize_authority(issuer);
        let mut reason = None;
        for rule in self.rules.iter().filter(|r| r.authority == issuer) {
            match eval_group(&rule.group, claims) {
                Ok(()) => return Decision::Release,
                Err(why) => {
                    reason.get_or_insert(why);
                }
            }
        }
        match reason {
            None => Decision::UnknownAuthority,
            Some(reason) => Decision::NotMet { reason },
        }
    }
}

fn eval_group(group: &Group, claims: &Value) -> Result<(), String> {
    match group {
        Group::AllOf(nodes) => nodes.iter().try_for_each(|n| eval_node(n, claims)),
        Group::AnyOf(nodes) => {
            let mut first = None;
            for n in nodes {
                match eval_node(n, claims) {
                    Ok(()) => return Ok(()),
                    Err(why) => {
                        first.get_or_insert(why);
                    }
                }
            }
            Err(match first {
                Some(why) if nodes.len() == 1 => why,
                Some(why) => format!("none of an anyOf group is met (first: {why})"),
                None => "an empty anyOf group".to_owned(),
            })
        }
    }
}

fn eval_node(node: &Node, claims: &Value) -> Result<(), String> {
    match node {
        Node::Condition(c) => eval_condition(c, claims),
        Node::Group(g) => eval_group(g, claims),
    }
}

/// The claim a path names: a top-level claim of that exact name, or else nested objects along
/// the dots.
pub fn resolve_claim<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    let top = claims.as_object()?;
    if let Some(v) = top.get(path) {
        return Some(v);
    }
    let mut at = claims;
    for segment in path.split('.') {
        at = at.as_object()?.get(segment)?;
    }
    Some(at)
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Whether `claim` equals `value`: same type and value, numbers by value, and a string value
/// against a boolean or number claim by the claim's JSON text.
fn scalar_equals(claim: &Value, value: &Scalar) -> bool {
    match (claim, value) {
        (Value::String(c), Scalar::String(v)) => c == v,
        (Value::Bool(c), Scalar::Bool(v)) => c == v,
        (Value::Number(c), Scalar::Number(v)) => compare_numbers(c, v) == Some(Ordering::Equal),
        (Value::Bool(c), Scalar::String(v)) => c.to_string() == *v,
        (Value::Number(c), Scalar::String(v)) => c.to_string() == *v,
        _ => false,
    }
}

fn eval_condition(c: &Condition, claims: &Value) -> Result<(), String> {
    let found = resolve_claim(claims, &c.claim);
    let name = Value::String(c.claim.clone());
    let Some(claim) = found else {
        return match (c.operator, &c.value) {
            (Operator::Exists, Scalar::Bool(false)) => Ok(()),
            _ => Err(format!(
                "claim {name} is missing (wanted {} {})",
                c.operator.name(),
                c.value
            )),
        };
    };
    let met = match (c.operator, &c.value) {
        (Operator::Exists, Scalar::Bool(want)) => *want,
        (Operator::Exists, _) => false,
        (Operator::Equals, v) => scalar_equals(claim, v),
        (Operator::NotEquals, v) => !scalar_equals(claim, v),
        (op, Scalar::Number(v)) => match claim {
            Value::Number(n) => match compare_numbers(n, v) {
                Some(ord) => match op {
                    Operator::Less => ord == Ordering::Less,
                    Operator::LessOrEquals => ord != Ordering::Greater,
                    Operator::Greater => ord == Ordering::Greater,
                    Operator::GreaterOrEquals => ord != Ordering::Less,
                    _ => false,
                },
                None => false,
            },
            _ => false,
        },
        _ => false,
    };
    if met {
        return Ok(());
    }
    let shown: String = claim.to_string().chars().take(200).collect();
    Err(match c.operator {
        Operator::Exists => format!("claim {name} is present (wanted exists false)"),
        op => format!("claim {name} is {shown}, not {} {}", op.name(), c.value),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://attest.example";

    fn policy(v: Value) -> ReleasePolicy {
        ReleasePolicy::parse(v.to_string().as_bytes()).unwrap()
    }

    fn refused(v: Value) -> PolicyError {
        ReleasePolicy::parse(v.to_string().as_bytes()).unwrap_err()
    }

    fn sgx_claims() -> Value {
        json!({
            "iss": ISS,
            "x-ms-sgx-mrenclave": "aa11",
            "x-ms-sgx-is-debuggable": false,
            "x-ms-sgx-svn": 3,
            "x-ms-isolation-tee": {"x-ms-attestation-type": "sgx", "x-ms-compliance-status": "ok"},
            "x-ms-runtime": {"keys": [{"kid": "k"}]},
        })
    }

    #[test]
    fn modern_form_all_operators() {
        let p = policy(
            json!({"version": "1.0.0", "anyOf": [{"authority": ISS, "allOf": [
                {"claim": "x-ms-sgx-mrenclave", "equals": "aa11"},
                {"claim": "x-ms-sgx-mrenclave", "notEquals": "bb22"},
                {"claim": "x-ms-sgx-is-debuggable", "equals": false},
                {"claim": "x-ms-sgx-svn", "greaterOrEquals": 3},
                {"claim": "x-ms-sgx-svn", "greater": 2},
                {"claim": "x-ms-sgx-svn", "less": 4.5},
                {"claim": "x-ms-sgx-svn", "lessOrEquals": 3},
                {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sgx"},
                {"claim": "x-ms-runtime", "exists": true},
                {"claim": "x-ms-absent", "exists": false},
                {"anyOf": [{"claim": "x-ms-sgx-svn", "equals": 9}, {"allOf": [{"claim": "x-ms-sgx-svn", "equals": 3.0}]}]},
            ]}]}),
        );
        assert_eq!(p.evaluate(ISS, &sgx_claims()), Decision::Release);
    }

    #[test]
    fn each_condition_can_fail() {
        let cases = [
            json!({"claim": "x-ms-sgx-mrenclave", "equals": "bb22"}),
            json!({"claim": "x-ms-sgx-mrenclave", "notEquals": "aa11"}),
            json!({"claim": "x-ms-sgx-is-debuggable", "equals": true}),
            json!({"claim": "x-ms-sgx-svn", "greaterOrEquals": 4}),
            json!({"claim": "x-ms-sgx-svn", "greater": 3}),
            json!({"claim": "x-ms-sgx-svn", "less": 3}),
            json!({"claim": "x-ms-sgx-svn", "lessOrEquals": 2.9}),
            json!({"claim": "x-ms-sgx-mrenclave", "greater": 1}),
            json!({"claim": "x-ms-runtime", "exists": false}),
            json!({"claim": "x-ms-absent", "exists": true}),
            json!({"claim": "x-ms-sgx-svn", "equals": "three"}),
            json!({"claim": "x-ms-sgx-mrenclave", "equals": 0}),
            json!({"claim": "x-ms-runtime", "equals": "k"}),
        ];
        for c in cases {
            let p = policy(json!({"anyOf": [{"authority": ISS, "allOf": [c.clone()]}]}));
            assert!(
                matches!(p.evaluate(ISS, &sgx_claims()), Decision::NotMet { .. }),
                "{c} was met"
            );
        }
    }

    #[test]
    fn missing_claim_is_not_met() {
        for op in ["equals", "notEquals", "less", "greaterOrEquals"] {
            let value = if op.starts_with('l') || op.starts_with('g') {
                json!(1)
            } else {
                json!("x")
            };
            let p = policy(
                json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "nope.deeper", op: value}]}]}),
            );
            match p.evaluate(ISS, &sgx_claims()) {
                Decision::NotMet { reason } => assert!(reason.contains("missing"), "{reason}"),
                other => panic!("{op} on a missing claim: {other:?}"),
            }
        }
        // A path through a non-object is missing too.
        let p = policy(
            json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "x-ms-sgx-svn.x", "notEquals": "y"}]}]}),
        );
        assert!(matches!(
            p.evaluate(ISS, &sgx_claims()),
            Decision::NotMet { .. }
        ));
    }

    #[test]
    fn legacy_form_compares_text() {
        let p = policy(json!({"anyOf": [{"authority": ISS, "allOf": [
            {"claim": "x-ms-sgx-is-debuggable", "condition": "equals", "value": "false"},
            {"claim": "x-ms-sgx-svn", "condition": "equals", "value": "3"},
            {"claim": "x-ms-sgx-mrenclave", "condition": "equals", "value": "aa11"},
        ]}]}));
        assert_eq!(p.evaluate(ISS, &sgx_claims()), Decision::Release);
        let p = policy(json!({"anyOf": [{"authority": ISS, "allOf": [
            {"claim": "x-ms-sgx-is-debuggable", "condition": "equals", "value": "true"},
        ]}]}));
        assert!(matches!(
            p.evaluate(ISS, &sgx_claims()),
            Decision::NotMet { .. }
        ));
        // Missing version is fine; any other version is not.
        assert!(
            policy(
                json!({"anyOf": [{"authority": ISS, "anyOf": [{"claim": "a", "exists": true}]}]})
            )
            .version
            .is_none()
        );
        assert!(matches!(
            refused(
                json!({"version": "2.0.0", "anyOf": [{"authority": ISS, "anyOf": [{"claim": "a", "exists": true}]}]})
            ),
            PolicyError::Version { .. }
        ));
    }

    #[test]
    fn authority_trailing_slash_and_unknown_issuer() {
        let p = policy(
            json!({"anyOf": [{"authority": format!("{ISS}/"), "allOf": [{"claim": "x-ms-sgx-svn", "equals": 3}]}]}),
        );
        assert_eq!(p.evaluate(ISS, &sgx_claims()), Decision::Release);
        assert_eq!(
            p.evaluate(&format!("{ISS}/"), &sgx_claims()),
            Decision::Release
        );
        assert_eq!(
            p.evaluate("https://evil.example", &sgx_claims()),
            Decision::UnknownAuthority
        );
        assert_eq!(
            p.evaluate("https://attest.example.evil", &sgx_claims()),
            Decision::UnknownAuthority
        );
        // Two authorities: each one's conditions apply to its own tokens only.
        let p = policy(json!({"anyOf": [
            {"authority": "https://other", "allOf": [{"claim": "x-ms-sgx-svn", "equals": 3}]},
            {"authority": ISS, "allOf": [{"claim": "x-ms-sgx-svn", "equals": 4}]},
        ]}));
        assert!(matches!(
            p.evaluate(ISS, &sgx_claims()),
            Decision::NotMet { .. }
        ));
        assert_eq!(
            p.evaluate("https://other/", &sgx_claims()),
            Decision::Release
        );
    }

    #[test]
    fn refused_at_creation() {
        let wrap = |c: Value| json!({"anyOf": [{"authority": ISS, "allOf": [c]}]});
        for (doc, what) in [
            (wrap(json!({"claim": "a", "equals": ["x"]})), "array value"),
            (
                wrap(json!({"claim": "a", "equals": {"x": 1}})),
                "object value",
            ),
            (wrap(json!({"claim": "a", "equals": null})), "null value"),
            (
                wrap(json!({"claim": "a", "condition": "equals", "value": ["x"]})),
                "legacy array",
            ),
            (
                wrap(json!({"claim": "a", "condition": "equals", "value": {}})),
                "legacy object",
            ),
            (
                wrap(json!({"claim": "a", "condition": "equals"})),
                "legacy without value",
            ),
            (
                wrap(json!({"claim": "a", "condition": "like", "value": "x"})),
                "legacy unknown operator",
            ),
            (
                wrap(json!({"claim": "a", "less": "3"})),
                "ordering on a string",
            ),
            (
                wrap(json!({"claim": "a", "exists": "yes"})),
                "exists with a string",
            ),
            (
                wrap(json!({"claim": "a", "equal": "x"})),
                "misspelt operator",
            ),
            (
                wrap(json!({"claim": "a", "equals": "x", "notEquals": "y"})),
                "two operators",
            ),
            (wrap(json!({"claim": "a"})), "no operator"),
            (wrap(json!({"claim": "", "equals": "x"})), "empty claim"),
            (
                wrap(json!({"claim": 5, "equals": "x"})),
                "claim not a string",
            ),
            (wrap(json!({"allOf": []})), "empty nested group"),
            (
                wrap(
                    json!({"allOf": [{"claim": "a", "exists": true}], "anyOf": [{"claim": "a", "exists": true}]}),
                ),
                "both groups",
            ),
            (wrap(json!("string")), "member not an object"),
            (json!({"anyOf": []}), "no authority"),
            (
                json!({"anyOf": [{"authority": ISS}]}),
                "authority without group",
            ),
            (
                json!({"anyOf": [{"authority": ISS, "allOf": []}]}),
                "empty group",
            ),
            (
                json!({"anyOf": [{"allOf": [{"claim": "a", "exists": true}]}]}),
                "no authority member",
            ),
            (
                json!({"anyOf": [{"authority": "/", "allOf": [{"claim": "a", "exists": true}]}]}),
                "empty authority",
            ),
            (
                json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "a", "exists": true}], "extra": 1}]}),
                "unknown member",
            ),
            (json!({"version": "1.0.0"}), "no anyOf"),
            (json!({"anyOf": {}}), "anyOf not an array"),
            (
                json!({"anyOf": [], "allOf": []}),
                "unknown top-level member",
            ),
            (json!([1]), "not an object"),
        ] {
            assert!(
                ReleasePolicy::parse(doc.to_string().as_bytes()).is_err(),
                "accepted: {what}"
            );
        }
        assert!(matches!(
            ReleasePolicy::parse(b"{\"anyOf\": [] } x"),
            Err(PolicyError::Json { .. })
        ));
        assert!(matches!(
            ReleasePolicy::parse(b"{\"anyOf\": ["),
            Err(PolicyError::Json { .. })
        ));
        assert!(matches!(
            ReleasePolicy::parse(b""),
            Err(PolicyError::Json { .. })
        ));
    }

    #[test]
    fn limits() {
        let mut group = json!({"claim": "a", "exists": true});
        for _ in 0..MAX_DEPTH {
            group = json!({"allOf": [group]});
        }
        // MAX_DEPTH groups below the authority's own: accepted; one more: refused.
        let ok = json!({"anyOf": [{"authority": ISS, "allOf": [group.clone()]}]});
        assert!(ReleasePolicy::parse(ok.to_string().as_bytes()).is_ok());
        let deep = json!({"anyOf": [{"authority": ISS, "allOf": [{"anyOf": [group]}]}]});
        assert_eq!(refused(deep), PolicyError::TooDeep);

        let many: Vec<Value> = (0..=MAX_CONDITIONS)
            .map(|i| json!({"claim": "a", "equals": i}))
            .collect();
        assert_eq!(
            refused(json!({"anyOf": [{"authority": ISS, "anyOf": many}]})),
            PolicyError::TooManyConditions
        );
        let rules: Vec<Value> = (0..=MAX_AUTHORITIES)
            .map(|i| json!({"authority": format!("https://a{i}"), "allOf": [{"claim": "a", "exists": true}]}))
            .collect();
        assert_eq!(
            refused(json!({"anyOf": rules})),
            PolicyError::TooManyAuthorities
        );
        let long = "x".repeat(MAX_STRING + 1);
        assert!(matches!(
            refused(
                json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "a", "equals": long}]}]})
            ),
            PolicyError::StringTooLong { .. }
        ));
        let big = vec![b' '; MAX_POLICY_BYTES + 1];
        assert_eq!(
            ReleasePolicy::parse(&big),
            Err(PolicyError::TooLarge {
                len: MAX_POLICY_BYTES + 1
            })
        );
        // Deep JSON that serde_json itself refuses: an error, not a stack overflow.
        let nested = "[".repeat(5000);
        assert!(matches!(
            ReleasePolicy::parse(nested.as_bytes()),
            Err(PolicyError::Json { .. })
        ));
    }

    #[test]
    fn anyof_groups_and_reasons() {
        let p = policy(json!({"anyOf": [{"authority": ISS, "anyOf": [
            {"claim": "x-ms-sgx-mrenclave", "equals": "zz"},
            {"claim": "x-ms-sgx-svn", "equals": 3},
        ]}]}));
        assert_eq!(p.evaluate(ISS, &sgx_claims()), Decision::Release);
        let p = policy(json!({"anyOf": [{"authority": ISS, "allOf": [
            {"claim": "x-ms-sgx-svn", "equals": 3},
            {"claim": "x-ms-sgx-mrenclave", "equals": "zz"},
        ]}]}));
        match p.evaluate(ISS, &sgx_claims()) {
            Decision::NotMet { reason } => {
                assert!(
                    reason.contains("x-ms-sgx-mrenclave") && reason.contains("\"zz\""),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        // A claim whose name contains dots is found by its whole name.
        let claims = json!({"a.b": 1, "a": {"b": 2}});
        let p = policy(
            json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "a.b", "equals": 1}]}]}),
        );
        assert_eq!(p.evaluate(ISS, &claims), Decision::Release);
    }

    #[test]
    fn big_numbers_compare_exactly() {
        let claims = json!({"n": u64::MAX, "m": i64::MIN});
        let p = policy(json!({"anyOf": [{"authority": ISS, "allOf": [
            {"claim": "n", "greater": u64::MAX - 1},
            {"claim": "m", "less": i64::MIN + 1},
            {"claim": "n", "greater": 1.5},
        ]}]}));
        assert_eq!(p.evaluate(ISS, &claims), Decision::Release);
    }
}
