//! Evaluation: incoming claims → configuration properties → authorization → issued claims.

use crate::ast::{
    Action, ClaimExpr, CmpOp, Condition, Expr, Field, Policy, Rule, StrMatch, Value, ValueMatch,
};
use crate::error::EvaluationError;
use crate::{CUSTOM_CLAIM_ISSUER, POLICY_ISSUER, SERVICE_ISSUER};

/// Most incoming claims (service and client claims together) one evaluation takes.
pub const MAX_INCOMING_CLAIMS: usize = 1024;
/// Most claims the evaluation's claim set may grow to through `add`/`issue`.
pub const MAX_CLAIMS: usize = 4096;
/// Most condition-against-claim comparisons one evaluation tries: rules with several
/// conditions search claim combinations, and this bounds that search's time whatever the policy.
pub const MAX_MATCH_STEPS: usize = 1_000_000;

/// One claim: type, value and who issued it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim {
    pub ty: String,
    pub value: Value,
    pub issuer: String,
}

/// What a policy evaluation yields for an authorized request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Claims `issue` made, in order, each (type, value) once: they go into the token.
    pub issued: Vec<Claim>,
    /// Properties `issueproperty` set in `configurationrules`.
    pub properties: Vec<Claim>,
}

struct State {
    claims: Vec<Claim>,
    steps: usize,
}

impl Policy {
    /// Evaluates the policy. `service` are the claims the service derived from verified
    /// evidence (issuer [`SERVICE_ISSUER`]); `client` are the claims the caller supplied (its
    /// runtime data), whose issuer is forced to [`CUSTOM_CLAIM_ISSUER`] so that they can never
    /// pass for the service's claims: a condition matches them only with
    /// `issuer=="CustomClaimIssuer"`.
    pub fn evaluate(
        &self,
        service: &[(String, Value)],
        client: &[(String, Value)],
    ) -> Result<Evaluation, EvaluationError> {
        let count = service.len().saturating_add(client.len());
        if count > MAX_INCOMING_CLAIMS {
            return Err(EvaluationError::TooManyClaims {
                count,
                limit: MAX_INCOMING_CLAIMS,
            });
        }
        let mut st = State {
            claims: Vec::with_capacity(count),
            steps: 0,
        };
        let claim = |(ty, value): &(String, Value), issuer: &str| Claim {
            ty: ty.clone(),
            value: value.clone(),
            issuer: issuer.to_owned(),
        };
        st.claims
            .extend(service.iter().map(|c| claim(c, SERVICE_ISSUER)));
        st.claims
            .extend(client.iter().map(|c| claim(c, CUSTOM_CLAIM_ISSUER)));

        let mut out = Evaluation::default();
        for rule in &self.configuration {
            for made in st.fire(rule)? {
                push_unique(&mut out.properties, made);
            }
        }
        let mut permitted = false;
        for rule in &self.authorization {
            match &rule.action {
                Action::Permit => permitted |= st.any_match(rule)?,
                Action::Deny { at } => {
                    if st.any_match(rule)? {
                        return Err(EvaluationError::Denied { at: *at });
                    }
                }
                _ => {
                    let made = st.fire(rule)?;
                    st.add(made)?;
                }
            }
        }
        if !permitted {
            return Err(EvaluationError::NotPermitted);
        }
        for rule in &self.issuance {
            let made = st.fire(rule)?;
            if matches!(rule.action, Action::Issue(_)) {
                for c in &made {
                    push_unique(&mut out.issued, c.clone());
                }
            }
            st.add(made)?;
        }
        Ok(out)
    }
}

fn push_unique(v: &mut Vec<Claim>, c: Claim) {
    if !v.iter().any(|o| o.ty == c.ty && o.value == c.value) {
        v.push(c);
    }
}

impl State {
    fn add(&mut self, made: Vec<Claim>) -> Result<(), EvaluationError> {
        let count = self.claims.len().saturating_add(made.len());
        if count > MAX_CLAIMS {
            return Err(EvaluationError::TooManyClaims {
                count,
                limit: MAX_CLAIMS,
            });
        }
        self.claims.extend(made);
        Ok(())
    }

    fn any_match(&mut self, rule: &Rule) -> Result<bool, EvaluationError> {
        let mut found = false;
        let mut bound = Vec::with_capacity(rule.conditions.len());
        self.search(&rule.conditions, &mut bound, &mut |_| {
            found = true;
            false
        })?;
        Ok(found)
    }

    /// The claims a rule's action makes, once per combination of matching claims.
    fn fire(&mut self, rule: &Rule) -> Result<Vec<Claim>, EvaluationError> {
        let expr = match &rule.action {
            Action::Add(e) | Action::Issue(e) | Action::IssueProperty(e) => e,
            Action::Permit | Action::Deny { .. } => return Ok(Vec::new()),
        };
        let mut made = Vec::new();
        let mut bound = Vec::with_capacity(rule.conditions.len());
        let conditions = &rule.conditions;
        let claims = self.claims.clone();
        self.search(conditions, &mut bound, &mut |b| {
            if let Some(c) = make(expr, conditions, b, &claims) {
                made.push(c);
            }
            made.len() < MAX_CLAIMS
        })?;
        Ok(made)
    }

    /// Depth-first search over claim combinations, calling `found` with the claim index bound
    /// to each condition; stops when `found` answers false.
    fn search(
        &mut self,
        conditions: &[Condition],
        bound: &mut Vec<usize>,
        found: &mut dyn FnMut(&[usize]) -> bool,
    ) -> Result<bool, EvaluationError> {
        let Some(cond) = conditions.get(bound.len()) else {
            return Ok(found(bound));
        };
        for i in 0..self.claims.len() {
            self.steps += 1;
            if self.steps > MAX_MATCH_STEPS {
                return Err(EvaluationError::TooComplex {
                    limit: MAX_MATCH_STEPS,
                });
            }
            if matches(cond, &self.claims[i]) {
                bound.push(i);
                let go_on = self.search(conditions, bound, found)?;
                bound.pop();
                if !go_on {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

fn str_match(m: &StrMatch, s: &str) -> bool {
    (m.s == s) == m.equal
}

fn value_match(m: &ValueMatch, v: &Value) -> bool {
    match (&m.lit, v) {
        (Value::Int(want), Value::Int(have)) => match m.op {
            CmpOp::Eq => have == want,
            CmpOp::Ne => have != want,
            CmpOp::Lt => have < want,
            CmpOp::Le => have <= want,
            CmpOp::Gt => have > want,
            CmpOp::Ge => have >= want,
        },
        (Value::Str(want), Value::Str(have)) => (have == want) == (m.op == CmpOp::Eq),
        (Value::Bool(want), Value::Bool(have)) => (have == want) == (m.op == CmpOp::Eq),
        // A value of another type never matches, not even with `!=`.
        _ => false,
    }
}

fn matches(cond: &Condition, claim: &Claim) -> bool {
    let issuer_ok = match &cond.issuer {
        Some(m) => str_match(m, &claim.issuer),
        None => claim.issuer == SERVICE_ISSUER || claim.issuer == POLICY_ISSUER,
    };
    issuer_ok
        && cond.ty.as_ref().is_none_or(|m| str_match(m, &claim.ty))
        && cond
            .value
            .as_ref()
            .is_none_or(|m| value_match(m, &claim.value))
}

fn lookup<'a>(
    var: &str,
    conditions: &[Condition],
    bound: &[usize],
    claims: &'a [Claim],
) -> Option<&'a Claim> {
    let idx = conditions
        .iter()
        .position(|c| c.var.as_deref() == Some(var))?;
    claims.get(*bound.get(idx)?)
}

fn make(
    expr: &ClaimExpr,
    conditions: &[Condition],
    bound: &[usize],
    claims: &[Claim],
) -> Option<Claim> {
    let eval = |e: &Expr| -> Option<Value> {
        match e {
            Expr::Lit(v) => Some(v.clone()),
            Expr::Ref { var, field } => {
                let c = lookup(var, conditions, bound, claims)?;
                Some(match field {
                    Field::Type => Value::Str(c.ty.clone()),
                    Field::Value => c.value.clone(),
                    Field::Issuer => Value::Str(c.issuer.clone()),
                })
            }
        }
    };
    match expr {
        ClaimExpr::Claim(var) => {
            let c = lookup(var, conditions, bound, claims)?;
            Some(c.clone())
        }
        ClaimExpr::TypeValue { ty, value } => Some(Claim {
            ty: eval(ty)?.to_type_name(),
            value: eval(value)?,
            issuer: POLICY_ISSUER.to_owned(),
        }),
    }
}
