//! Tokens to a [`Policy`]. A recursive-descent parser over a flat grammar (no construct nests in
//! itself), so its stack depth is fixed whatever the input.

use crate::ast::{
    Action, ClaimExpr, CmpOp, Condition, Expr, Field, Policy, Rule, Section, StrMatch, Value,
    ValueMatch, Version,
};
use crate::error::{ParseErrorKind as K, PolicyParseError};
use crate::lexer::{Position, Tok, tokenize};

/// Largest policy text accepted. Azure's own policies are a few kilobytes; the cap bounds the
/// parsing work and memory an administrator's (or a draft-policy caller's) text can cost.
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// Most tokens in one policy (bounds the token vector).
pub const MAX_TOKENS: usize = 16 * 1024;
/// Most rules over all sections (bounds evaluation time with [`crate::MAX_MATCH_STEPS`]).
pub const MAX_RULES: usize = 512;
/// Most conditions joined by `&&` in one rule: evaluation tries claim combinations, so the
/// number of conditions is the depth of that search.
pub const MAX_CONDITIONS: usize = 8;

/// The deprecated incoming claim type aliases of MAA's first policy grammar.
const ALIASES: &[(&str, &str)] = &[
    ("$is-debuggable", "x-ms-sgx-is-debuggable"),
    ("$sgx-mrsigner", "x-ms-sgx-mrsigner"),
    ("$sgx-mrenclave", "x-ms-sgx-mrenclave"),
    ("$product-id", "x-ms-sgx-product-id"),
    ("$svn", "x-ms-sgx-svn"),
    ("$tee", "x-ms-attestation-type"),
];

/// The claim type a condition's `type==` names, deprecated aliases resolved.
pub fn resolve_alias(ty: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == ty)
        .map_or(ty, |(_, real)| real)
}

struct Parser {
    toks: Vec<(Position, Tok)>,
    next: usize,
    end: Position,
    rules: usize,
}

fn err(at: Position, kind: K) -> PolicyParseError {
    PolicyParseError { at, kind }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.next).map(|(_, t)| t)
    }

    fn pos(&self) -> Position {
        self.toks.get(self.next).map_or(self.end, |(p, _)| *p)
    }

    fn unexpected(&self, expected: &'static str) -> PolicyParseError {
        match self.toks.get(self.next) {
            Some((at, t)) => err(
                *at,
                K::Expected {
                    expected,
                    found: t.describe(),
                },
            ),
            None => err(self.end, K::UnexpectedEnd { expected }),
        }
    }

    fn expect(&mut self, want: &Tok, expected: &'static str) -> Result<Position, PolicyParseError> {
        if self.peek() == Some(want) {
            let at = self.pos();
            self.next += 1;
            Ok(at)
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn eat(&mut self, want: &Tok) -> bool {
        if self.peek() == Some(want) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self, expected: &'static str) -> Result<(Position, String), PolicyParseError> {
        match self.toks.get(self.next) {
            Some((at, Tok::Ident(s))) => {
                let r = (*at, s.clone());
                self.next += 1;
                Ok(r)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn policy(&mut self) -> Result<Policy, PolicyParseError> {
        let (at, kw) = self.ident("`version`")?;
        if kw != "version" {
            return Err(err(
                at,
                K::Expected {
                    expected: "`version`",
                    found: Tok::Ident(kw).describe(),
                },
            ));
        }
        self.expect(&Tok::Assign, "`=`")?;
        let version = match self.peek() {
            Some(Tok::Number(n)) if n == "1.0" => Version::V1_0,
            Some(Tok::Number(n)) if n == "1.1" => Version::V1_1,
            Some(Tok::Number(n)) => return Err(err(self.pos(), K::UnsupportedVersion(n.clone()))),
            _ => return Err(self.unexpected("a version number")),
        };
        self.next += 1;
        self.expect(&Tok::Semi, "`;`")?;
        let mut policy = Policy {
            version,
            configuration: Vec::new(),
            authorization: Vec::new(),
            issuance: Vec::new(),
        };
        let mut seen: Option<Section> = None;
        let mut has_authorization = false;
        while self.peek().is_some() {
            let (at, name) = self.ident("a section name")?;
            let section = match name.as_str() {
                "configurationrules" => Section::Configuration,
                "authorizationrules" => Section::Authorization,
                "issuancerules" => Section::Issuance,
                _ => return Err(err(at, K::UnknownSection(name))),
            };
            if section == Section::Configuration && version == Version::V1_0 {
                return Err(err(at, K::ConfigurationRulesNeedV11));
            }
            if let Some(prev) = seen {
                if prev == section {
                    return Err(err(at, K::DuplicateSection(section.name())));
                }
                if prev > section {
                    return Err(err(at, K::SectionOrder));
                }
            }
            seen = Some(section);
            has_authorization |= section == Section::Authorization;
            self.expect(&Tok::LBrace, "`{`")?;
            let mut rules = Vec::new();
            while self.peek() != Some(&Tok::RBrace) {
                rules.push(self.rule(section)?);
            }
            self.expect(&Tok::RBrace, "`}`")?;
            // Azure's samples end each section with `};`; the semicolon is optional.
            self.eat(&Tok::Semi);
            match section {
                Section::Configuration => policy.configuration = rules,
                Section::Authorization => policy.authorization = rules,
                Section::Issuance => policy.issuance = rules,
            }
        }
        if !has_authorization {
            return Err(err(self.end, K::MissingAuthorizationRules));
        }
        Ok(policy)
    }

    fn rule(&mut self, section: Section) -> Result<Rule, PolicyParseError> {
        let at = self.pos();
        self.rules += 1;
        if self.rules > MAX_RULES {
            return Err(err(at, K::TooManyRules { limit: MAX_RULES }));
        }
        let mut conditions: Vec<Condition> = Vec::new();
        if self.peek() != Some(&Tok::Arrow) {
            loop {
                if conditions.len() == MAX_CONDITIONS {
                    return Err(err(
                        self.pos(),
                        K::TooManyConditions {
                            limit: MAX_CONDITIONS,
                        },
                    ));
                }
                let c = self.condition()?;
                if let Some(v) = &c.var
                    && conditions.iter().any(|o| o.var.as_ref() == Some(v))
                {
                    return Err(err(c.at, K::DuplicateVariable(v.clone())));
                }
                conditions.push(c);
                if !self.eat(&Tok::And) {
                    break;
                }
            }
        }
        self.expect(&Tok::Arrow, "`=>` or `&&`")?;
        let action = self.action(section, &conditions)?;
        // Rules end with `;`; Azure's published samples sometimes leave it out.
        self.eat(&Tok::Semi);
        Ok(Rule {
            at,
            conditions,
            action,
        })
    }

    fn condition(&mut self) -> Result<Condition, PolicyParseError> {
        let at = self.pos();
        let var = if let Some(Tok::Ident(_)) = self.peek() {
            let (_, v) = self.ident("a claim variable")?;
            self.expect(&Tok::Colon, "`:`")?;
            Some(v)
        } else {
            None
        };
        self.expect(&Tok::LBracket, "`[` or `=>`")?;
        let mut c = Condition {
            at,
            var,
            ty: None,
            value: None,
            issuer: None,
        };
        if self.eat(&Tok::RBracket) {
            return Ok(c);
        }
        loop {
            let (pat, prop) = self.ident("type, value or issuer")?;
            let op_at = self.pos();
            let op = match self.peek() {
                // `=` where `==` is meant appears in Azure's own published samples.
                Some(Tok::Eq | Tok::Assign) => CmpOp::Eq,
                Some(Tok::Ne) => CmpOp::Ne,
                Some(Tok::Lt) => CmpOp::Lt,
                Some(Tok::Le) => CmpOp::Le,
                Some(Tok::Gt) => CmpOp::Gt,
                Some(Tok::Ge) => CmpOp::Ge,
                _ => return Err(self.unexpected("a comparison operator")),
            };
            self.next += 1;
            let lit_at = self.pos();
            let lit = self.literal()?;
            match prop.as_str() {
                "type" | "issuer" => {
                    let name: &'static str = if prop == "type" { "type" } else { "issuer" };
                    let (Value::Str(s), Some(eq)) = (lit, op.as_equality()) else {
                        return Err(err(lit_at, K::PropertyNotString(name)));
                    };
                    let slot = if name == "type" {
                        &mut c.ty
                    } else {
                        &mut c.issuer
                    };
                    if slot.is_some() {
                        return Err(err(pat, K::DuplicateProperty(name)));
                    }
                    let s = if name == "type" {
                        resolve_alias(&s).to_owned()
                    } else {
                        s
                    };
                    *slot = Some(StrMatch { equal: eq, s });
                }
                "value" => {
                    if c.value.is_some() {
                        return Err(err(pat, K::DuplicateProperty("value")));
                    }
                    if op.as_equality().is_none() {
                        let what = match lit {
                            Value::Int(_) => "",
                            Value::Str(_) => "a string",
                            Value::Bool(_) => "a boolean",
                        };
                        if !what.is_empty() {
                            return Err(err(
                                op_at,
                                K::OrderingOnNonInteger {
                                    op: op.symbol(),
                                    what,
                                },
                            ));
                        }
                    }
                    c.value = Some(ValueMatch { op, lit });
                }
                _ => return Err(err(pat, K::UnknownProperty(prop))),
            }
            if self.eat(&Tok::RBracket) {
                return Ok(c);
            }
            self.expect(&Tok::Comma, "`,` or `]`")?;
        }
    }

    fn literal(&mut self) -> Result<Value, PolicyParseError> {
        let at = self.pos();
        let v = match self.peek() {
            Some(Tok::Str(s)) => Value::Str(s.clone()),
            Some(Tok::Number(n)) => {
                if n.contains('.') {
                    return Err(err(at, K::BadNumber(n.clone())));
                }
                Value::Int(
                    n.parse::<i64>()
                        .map_err(|_| err(at, K::IntegerOutOfRange(n.clone())))?,
                )
            }
            Some(Tok::Ident(b)) if b == "true" => Value::Bool(true),
            Some(Tok::Ident(b)) if b == "false" => Value::Bool(false),
            _ => return Err(self.unexpected("a string, an integer, true or false")),
        };
        self.next += 1;
        Ok(v)
    }

    fn action(
        &mut self,
        section: Section,
        conditions: &[Condition],
    ) -> Result<Action, PolicyParseError> {
        let (at, name) = self.ident("an action")?;
        let name: &'static str = match name.as_str() {
            "permit" => "permit",
            "deny" => "deny",
            "add" => "add",
            "issue" => "issue",
            "issueproperty" => "issueproperty",
            _ => return Err(err(at, K::UnknownAction(name))),
        };
        let allowed = match section {
            Section::Configuration => name == "issueproperty",
            Section::Authorization => matches!(name, "permit" | "deny" | "add"),
            Section::Issuance => matches!(name, "issue" | "add"),
        };
        if !allowed {
            return Err(err(
                at,
                K::ActionNotAllowed {
                    action: name,
                    section: section.name(),
                },
            ));
        }
        self.expect(&Tok::LParen, "`(`")?;
        let action = match name {
            "permit" => Action::Permit,
            "deny" => Action::Deny { at },
            _ => {
                let claim = self.claim_expr(name, conditions)?;
                match name {
                    "add" => Action::Add(claim),
                    "issue" => Action::Issue(claim),
                    _ => Action::IssueProperty(claim),
                }
            }
        };
        self.expect(&Tok::RParen, "`)`")?;
        Ok(action)
    }

    fn claim_expr(
        &mut self,
        action: &'static str,
        conditions: &[Condition],
    ) -> Result<ClaimExpr, PolicyParseError> {
        let mut ty = None;
        let mut value = None;
        loop {
            let (at, arg) = self.ident("type, value or claim")?;
            self.expect(&Tok::Assign, "`=`")?;
            match arg.as_str() {
                "claim" => {
                    if ty.is_some() || value.is_some() {
                        return Err(err(at, K::UnknownArgument(arg)));
                    }
                    let (vat, var) = self.ident("a claim variable")?;
                    check_bound(vat, &var, conditions)?;
                    return Ok(ClaimExpr::Claim(var));
                }
                "type" if ty.is_none() => ty = Some(self.expr(conditions)?),
                "value" if value.is_none() => value = Some(self.expr(conditions)?),
                "type" => return Err(err(at, K::DuplicateProperty("type"))),
                "value" => return Err(err(at, K::DuplicateProperty("value"))),
                _ => return Err(err(at, K::UnknownArgument(arg))),
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        match (ty, value) {
            (Some(ty), Some(value)) => Ok(ClaimExpr::TypeValue { ty, value }),
            _ => Err(err(self.pos(), K::MissingArgument(action))),
        }
    }

    fn expr(&mut self, conditions: &[Condition]) -> Result<Expr, PolicyParseError> {
        if let Some(Tok::Ident(name)) = self.peek()
            && name != "true"
            && name != "false"
        {
            let (at, var) = self.ident("a claim variable")?;
            check_bound(at, &var, conditions)?;
            self.expect(&Tok::Dot, "`.`")?;
            let (fat, field) = self.ident("type, value or issuer")?;
            let field = match field.as_str() {
                "type" => Field::Type,
                "value" => Field::Value,
                "issuer" => Field::Issuer,
                _ => return Err(err(fat, K::UnknownProperty(field))),
            };
            return Ok(Expr::Ref { var, field });
        }
        Ok(Expr::Lit(self.literal()?))
    }
}

fn check_bound(at: Position, var: &str, conditions: &[Condition]) -> Result<(), PolicyParseError> {
    if conditions.iter().any(|c| c.var.as_deref() == Some(var)) {
        Ok(())
    } else {
        Err(err(at, K::UnboundVariable(var.to_owned())))
    }
}

/// Parses policy text. Never panics; every refusal names its line and column.
pub fn parse(text: &str) -> Result<Policy, PolicyParseError> {
    if text.len() > MAX_POLICY_SIZE {
        return Err(err(
            Position { line: 1, column: 1 },
            K::TooLarge {
                size: text.len(),
                limit: MAX_POLICY_SIZE,
            },
        ));
    }
    let toks = tokenize(text, MAX_TOKENS)?;
    let end = end_position(text);
    let mut p = Parser {
        toks,
        next: 0,
        end,
        rules: 0,
    };
    let policy = p.policy()?;
    if p.peek().is_some() {
        return Err(err(p.pos(), K::TrailingText));
    }
    Ok(policy)
}

fn end_position(text: &str) -> Position {
    let mut pos = Position { line: 1, column: 1 };
    for c in text.chars() {
        if c == '\n' {
            pos.line = pos.line.saturating_add(1);
            pos.column = 1;
        } else {
            pos.column = pos.column.saturating_add(1);
        }
    }
    pos
}
