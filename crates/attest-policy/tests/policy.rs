//! The policy language: Azure's published samples parse, malformed policies are refused with
//! their line and column, evaluation authorizes and issues as MAA's does.

#![allow(clippy::unwrap_used)]

use coffer_attest_policy::{
    CUSTOM_CLAIM_ISSUER, DEFAULT_SGX_POLICY, EvaluationError, MAX_CONDITIONS, MAX_POLICY_SIZE,
    POLICY_ISSUER, ParseErrorKind, Position, SERVICE_ISSUER, Value, parse, policy_hash,
};

const MRSIGNER: &str = "5151515151515151515151515151515151515151515151515151515151515151";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// The claims the service derives from an SGX quote.
fn sgx_claims(debuggable: bool, mrsigner: &str, svn: i64) -> Vec<(String, Value)> {
    vec![
        ("x-ms-sgx-is-debuggable".into(), Value::Bool(debuggable)),
        ("x-ms-sgx-mrsigner".into(), Value::Str(mrsigner.into())),
        ("x-ms-sgx-mrenclave".into(), Value::Str("e1".repeat(32))),
        ("x-ms-sgx-product-id".into(), Value::Int(1)),
        ("x-ms-sgx-svn".into(), Value::Int(svn)),
        ("x-ms-attestation-type".into(), Value::Str("sgx".into())),
    ]
}

fn issued(e: &coffer_attest_policy::Evaluation) -> Vec<(String, Value)> {
    e.issued
        .iter()
        .map(|c| (c.ty.clone(), c.value.clone()))
        .collect()
}

// https://learn.microsoft.com/azure/attestation/policy-examples ("Sample custom policy for an
// SGX enclave", placeholders filled in) and ("Default policy for an SGX enclave");
// https://learn.microsoft.com/azure/attestation/author-sign-policy. See tests/fixtures/README.md.
#[test]
fn accepts_azure_published_samples() {
    for name in [
        "sgx_custom_sample.policy",
        "sgx_default_1_1.policy",
        "author_sign_sample.policy",
    ] {
        let text = fixture(name);
        parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(fixture("sgx_default_1_1.policy"), DEFAULT_SGX_POLICY);
}

#[test]
fn custom_sample_permits_the_release_enclave_of_its_signer() {
    let p = parse(&fixture("sgx_custom_sample.policy")).unwrap();
    let e = p.evaluate(&sgx_claims(false, MRSIGNER, 3), &[]).unwrap();
    assert_eq!(
        issued(&e),
        vec![("signer".into(), Value::Str(MRSIGNER.into()))]
    );
    assert_eq!(e.issued[0].issuer, POLICY_ISSUER);
}

#[test]
fn custom_sample_refuses_a_debuggable_enclave() {
    let p = parse(&fixture("sgx_custom_sample.policy")).unwrap();
    assert_eq!(
        p.evaluate(&sgx_claims(true, MRSIGNER, 3), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

#[test]
fn custom_sample_refuses_another_signer() {
    let p = parse(&fixture("sgx_custom_sample.policy")).unwrap();
    assert_eq!(
        p.evaluate(&sgx_claims(false, &"52".repeat(32), 3), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

#[test]
fn default_policy_issues_the_deprecated_names_and_its_property() {
    let p = parse(DEFAULT_SGX_POLICY).unwrap();
    let e = p.evaluate(&sgx_claims(true, MRSIGNER, 7), &[]).unwrap();
    let got = issued(&e);
    assert!(got.contains(&("is-debuggable".into(), Value::Bool(true))));
    assert!(got.contains(&("sgx-mrsigner".into(), Value::Str(MRSIGNER.into()))));
    assert!(got.contains(&("svn".into(), Value::Int(7))));
    assert!(got.contains(&("tee".into(), Value::Str("sgx".into()))));
    assert_eq!(got.len(), 6);
    assert_eq!(e.properties.len(), 1);
    assert_eq!(e.properties[0].ty, "x-ms-sgx-tcbidentifier");
    assert_eq!(e.properties[0].value, Value::Str("azuredefault".into()));
}

#[test]
fn deny_wins_over_permit_and_names_its_rule() {
    let p = parse(
        "version=1.0;\nauthorizationrules {\n  [type==\"x-ms-sgx-is-debuggable\", value==true] => deny();\n  => permit();\n};",
    )
    .unwrap();
    assert_eq!(
        p.evaluate(&sgx_claims(true, MRSIGNER, 1), &[]),
        Err(EvaluationError::Denied {
            at: Position {
                line: 3,
                column: 52
            }
        })
    );
    assert!(p.evaluate(&sgx_claims(false, MRSIGNER, 1), &[]).is_ok());
}

#[test]
fn deprecated_aliases_name_the_sgx_claims() {
    let p = parse(&format!(
        "version=1.0; authorizationrules {{ [type==\"$is-debuggable\", value==false] && \
         [type==\"$sgx-mrsigner\", value==\"{MRSIGNER}\"] && [type==\"$product-id\", value==1] \
         && [type==\"$svn\", value>=2] && [type==\"$tee\", value==\"sgx\"] && \
         [type==\"$sgx-mrenclave\", value!=\"00\"] => permit(); }};"
    ))
    .unwrap();
    assert!(p.evaluate(&sgx_claims(false, MRSIGNER, 2), &[]).is_ok());
    assert_eq!(
        p.evaluate(&sgx_claims(false, MRSIGNER, 1), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

#[test]
fn integer_comparisons() {
    for (op, svn, ok) in [
        ("==", 5, true),
        ("==", 4, false),
        ("!=", 4, true),
        ("!=", 5, false),
        ("<", 4, true),
        ("<", 5, false),
        ("<=", 5, true),
        ("<=", 6, false),
        (">", 6, true),
        (">", 5, false),
        (">=", 5, true),
        (">=", 4, false),
    ] {
        let p = parse(&format!(
            "version=1.0; authorizationrules {{ [type==\"x-ms-sgx-svn\", value{op}5] => permit(); }};"
        ))
        .unwrap();
        assert_eq!(
            p.evaluate(&sgx_claims(false, MRSIGNER, svn), &[]).is_ok(),
            ok,
            "svn {svn} {op} 5"
        );
    }
}

#[test]
fn a_value_of_another_type_never_matches() {
    // "1" the string is not 1 the integer, even under !=.
    let p = parse(
        "version=1.0; authorizationrules { [type==\"x-ms-sgx-product-id\", value!=\"1\"] => permit(); };",
    )
    .unwrap();
    assert_eq!(
        p.evaluate(&sgx_claims(false, MRSIGNER, 1), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

/// A client's runtime claims cannot pass for the service's: a condition without `issuer` does
/// not see them, so a client claim `x-ms-sgx-is-debuggable = false` does not get a debuggable
/// enclave past a policy that requires a non-debuggable one.
#[test]
fn rejects_client_claims_impersonating_the_service() {
    let p = parse(
        "version=1.0; authorizationrules { [type==\"x-ms-sgx-is-debuggable\", value==false] => permit(); };",
    )
    .unwrap();
    let client = vec![("x-ms-sgx-is-debuggable".to_owned(), Value::Bool(false))];
    assert_eq!(
        p.evaluate(&sgx_claims(true, MRSIGNER, 1), &client),
        Err(EvaluationError::NotPermitted)
    );
    // Naming the custom issuer matches them, and issue(claim=c) keeps that issuer.
    let p = parse(
        "version=1.0; authorizationrules { => permit(); }; issuancerules { \
         c:[type==\"nonce\", issuer==\"CustomClaimIssuer\"] => issue(claim=c); };",
    )
    .unwrap();
    let client = vec![("nonce".to_owned(), Value::Str("abc".into()))];
    let e = p
        .evaluate(&sgx_claims(false, MRSIGNER, 1), &client)
        .unwrap();
    assert_eq!(e.issued.len(), 1);
    assert_eq!(e.issued[0].issuer, CUSTOM_CLAIM_ISSUER);
    // And a service claim is issued with the service's issuer.
    let p = parse(
        "version=1.0; authorizationrules { => permit(); }; issuancerules { \
         c:[type==\"x-ms-sgx-svn\"] => issue(claim=c); };",
    )
    .unwrap();
    let e = p.evaluate(&sgx_claims(false, MRSIGNER, 9), &[]).unwrap();
    assert_eq!(e.issued[0].issuer, SERVICE_ISSUER);
    assert_eq!(e.issued[0].value, Value::Int(9));
}

#[test]
fn add_feeds_later_rules_but_not_the_token() {
    let p = parse(
        "version=1.0;
authorizationrules {
    [type==\"x-ms-sgx-svn\", value>=3] => add(type=\"svn-ok\", value=true);
    [type==\"svn-ok\", value==true] && c:[type==\"x-ms-sgx-mrsigner\"] => permit();
};
issuancerules {
    c1:[type==\"svn-ok\"] && c2:[type==\"x-ms-sgx-mrenclave\"] => issue(type=\"enclave\", value=c2.value);
    c:[type==\"x-ms-sgx-product-id\"] => add(type=\"pid\", value=c.value);
    c:[type==\"pid\"] => issue(type=c.type, value=c.value);
};",
    )
    .unwrap();
    let e = p.evaluate(&sgx_claims(false, MRSIGNER, 3), &[]).unwrap();
    assert_eq!(
        issued(&e),
        vec![
            ("enclave".into(), Value::Str("e1".repeat(32))),
            ("pid".into(), Value::Int(1)),
        ]
    );
    assert_eq!(
        p.evaluate(&sgx_claims(false, MRSIGNER, 2), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

#[test]
fn empty_authorization_permits_nothing() {
    let p = parse("version=1.0; authorizationrules { }; issuancerules { };").unwrap();
    assert_eq!(
        p.evaluate(&sgx_claims(false, MRSIGNER, 1), &[]),
        Err(EvaluationError::NotPermitted)
    );
}

#[test]
fn policy_hash_is_maa_s() {
    // BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy))))), computed independently with Python's
    // hashlib and base64.
    assert_eq!(
        policy_hash("version=1.0; authorizationrules{=>permit();};"),
        "oZWsAYB8SErxnDvboqIBd4dwrmtdvoNOe1fj4Q1WA-4"
    );
}

fn refused(text: &str) -> (u32, u32, ParseErrorKind) {
    let e = parse(text).expect_err(text);
    // The message names the place.
    assert!(
        e.to_string().starts_with(&format!(
            "policy line {}, column {}:",
            e.at.line, e.at.column
        )),
        "{e}"
    );
    (e.at.line, e.at.column, e.kind)
}

#[test]
fn rejects_malformed_policies_with_line_and_column() {
    use ParseErrorKind as K;
    type Case = (&'static str, u32, u32, fn(&K) -> bool);
    let cases: Vec<Case> = vec![
        ("", 1, 1, |k| {
            matches!(k, K::Expected { .. } | K::UnexpectedEnd { .. })
        }),
        (
            "version=2.0;",
            1,
            9,
            |k| matches!(k, K::UnsupportedVersion(v) if v == "2.0"),
        ),
        ("version=1.0", 1, 12, |k| {
            matches!(k, K::UnexpectedEnd { .. })
        }),
        ("version=1.0;\nissuancerules { };", 2, 19, |k| {
            matches!(k, K::MissingAuthorizationRules)
        }),
        ("version=1.0;\nconfigurationrules { };", 2, 1, |k| {
            matches!(k, K::ConfigurationRulesNeedV11)
        }),
        (
            "version=1.0;\nauthorizationrules {\n  => permit()\n",
            4,
            1,
            |k| matches!(k, K::UnexpectedEnd { .. }),
        ),
        (
            "version=1.0;\nauthorizationrules {\n  [type==\"x\"] => allow();\n};",
            3,
            18,
            |k| matches!(k, K::UnknownAction(a) if a == "allow"),
        ),
        (
            "version=1.0;\nauthorizationrules {\n  => issue(type=\"a\", value=1);\n};",
            3,
            6,
            |k| matches!(k, K::ActionNotAllowed { .. }),
        ),
        (
            "version=1.0;\nauthorizationrules {\n  [type==\"x\", value<\"a\"] => permit();\n};",
            3,
            20,
            |k| matches!(k, K::OrderingOnNonInteger { .. }),
        ),
        (
            "version=1.0;\nauthorizationrules {\n  [type==\"x\", colour==1] => permit();\n};",
            3,
            15,
            |k| matches!(k, K::UnknownProperty(p) if p == "colour"),
        ),
        (
            "version=1.0;\nauthorizationrules {\n  [type==\"x] => permit();\n};",
            3,
            10,
            |k| matches!(k, K::UnterminatedString),
        ),
        (
            "version=1.0;\nauthorizationrules { => permit(); };\nissuancerules {\n  => issue(type=\"a\", value=c.value);\n};",
            4,
            28,
            |k| matches!(k, K::UnboundVariable(v) if v == "c"),
        ),
        (
            "version=1.0;\nauthorizationrules { => permit(); };\nauthorizationrules { };",
            3,
            1,
            |k| matches!(k, K::DuplicateSection(_)),
        ),
        (
            "version=1.0;\nissuancerules { };\nauthorizationrules { };",
            3,
            1,
            |k| matches!(k, K::SectionOrder),
        ),
        (
            "version=1.0;\nauthorizationrules { => permit(); };\n}",
            3,
            1,
            |k| matches!(k, K::UnknownSection(_) | K::Expected { .. }),
        ),
        (
            "version=1.0;\nauthorizationrules { [type==\"x\", value==99999999999999999999] => permit(); };",
            2,
            41,
            |k| matches!(k, K::IntegerOutOfRange(_)),
        ),
        (
            "version=1.0;\nauthorizationrules { [type==\"x\"] # => permit(); };",
            2,
            34,
            |k| matches!(k, K::UnexpectedChar('#')),
        ),
        (
            "version=1.0;\nauthorizationrules { c:[type==\"x\"] && c:[type==\"y\"] => permit(); };",
            2,
            39,
            |k| matches!(k, K::DuplicateVariable(_)),
        ),
    ];
    let mut wrong = Vec::new();
    for (text, line, column, kind) in cases {
        let (l, c, k) = refused(text);
        if !kind(&k) || (l, c) != (line, column) {
            wrong.push(format!("{text:?}: got {l}:{c} {k:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn rejects_oversized_policies_and_rules() {
    let big = format!(
        "version=1.0; authorizationrules {{ }};{}",
        " ".repeat(MAX_POLICY_SIZE)
    );
    assert!(matches!(refused(&big).2, ParseErrorKind::TooLarge { .. }));
    let conds = ["[type==\"x\"]"; MAX_CONDITIONS + 1].join(" && ");
    let text = format!("version=1.0; authorizationrules {{ {conds} => permit(); }};");
    assert!(matches!(
        refused(&text).2,
        ParseErrorKind::TooManyConditions { .. }
    ));
}

/// A rule of eight conditions over many claims would try claims^8 combinations: the step
/// limit stops it with an error, quickly.
#[test]
fn evaluation_work_is_bounded() {
    let conds = ["[type==\"x\"]"; MAX_CONDITIONS - 1].join(" && ");
    let text =
        format!("version=1.0; authorizationrules {{ {conds} && [type==\"never\"] => permit(); }};");
    let p = parse(&text).unwrap();
    let claims: Vec<(String, Value)> = (0..100).map(|i| ("x".to_owned(), Value::Int(i))).collect();
    assert!(matches!(
        p.evaluate(&claims, &[]),
        Err(EvaluationError::TooComplex { .. })
    ));
}
