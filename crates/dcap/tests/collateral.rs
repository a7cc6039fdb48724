//! Verification with collateral, against a test deployment whose every key the test holds (root
//! CA, PCK CA, PCK leaf with the SGX extension, TCB signer, attestation key): TCB level matching
//! and status convergence, revocation, stale collateral, forged and tampered collateral. Every
//! case is also given to dcap-qvl (`QuoteVerifier::new(root_der)`), an independent verifier,
//! which must reach the same TCB status or also refuse.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::quote::QuoteVersion;
use coffer_abi::{AttributesFlags, Codec};
use coffer_ca::test_support::{
    CollateralParams, Deployment, DeploymentParams, QuoteParams, TEST_NOW, TcbLevelParams, at,
};
use coffer_dcap::{
    Collateral, CollateralError, QuoteVerificationError as E, RootTrust, TcbStatus, TcbVerdict,
    TrustRoot, VerifyOptions, verify,
};

fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn opts(d: &Deployment, c: &Collateral, now: u64) -> VerifyOptions {
    VerifyOptions::pinned(d.root.clone(), time(now)).with_collateral(c.clone())
}

/// Coffer's verdict.
fn ours(d: &Deployment, quote: &[u8], c: &Collateral, now: u64) -> Result<TcbVerdict, E> {
    let v = verify(quote, &opts(d, c, now))?;
    assert_eq!(v.root_trust(), RootTrust::Pinned);
    Ok(v.tcb().expect("a TCB verdict with collateral").clone())
}

/// dcap-qvl's verdict on the same quote and the same collateral JSON.
fn theirs(
    d: &Deployment,
    quote: &[u8],
    c: &Collateral,
    now: u64,
) -> Result<(String, Vec<String>), String> {
    let qc: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&c.to_json()).unwrap();
    dcap_qvl::verify::QuoteVerifier::new(d.root.to_vec())
        .verify(quote, &qc, now)
        .map(|r| (r.status, r.advisory_ids))
        .map_err(|e| format!("{e:#}"))
}

/// Both accept with `status` and `advisories`.
fn both_accept(
    d: &Deployment,
    quote: &[u8],
    c: &Collateral,
    status: TcbStatus,
    advisories: &[&str],
) {
    let v = ours(d, quote, c, TEST_NOW).unwrap();
    assert_eq!(v.status, status, "{v:?}");
    assert_eq!(v.advisory_ids, advisories, "{v:?}");
    let (s, a) = theirs(d, quote, c, TEST_NOW).unwrap();
    assert_eq!(s, status.as_str());
    assert_eq!(a, advisories);
}

/// Both refuse; returns Coffer's error.
fn both_refuse(d: &Deployment, quote: &[u8], c: &Collateral, now: u64) -> E {
    let err = ours(d, quote, c, now).unwrap_err();
    let qvl = theirs(d, quote, c, now);
    assert!(
        qvl.is_err(),
        "dcap-qvl accepted what Coffer refused ({err}): {qvl:?}"
    );
    err
}

fn deployment_with_tcb(components: [u8; 16], pcesvn: u16) -> Deployment {
    Deployment::new(DeploymentParams {
        tcb_components: components,
        pcesvn,
        ..DeploymentParams::default()
    })
}

fn comps(head: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..head.len()].copy_from_slice(head);
    a
}

#[test]
fn accepts_a_deployment_quote_with_its_collateral_and_agrees_with_dcap_qvl() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let c = d.collateral(&CollateralParams::default());
    both_accept(
        &d,
        &quote,
        &c,
        TcbStatus::SWHardeningNeeded,
        &["INTEL-SA-00615"],
    );

    let v = verify(&quote, &opts(&d, &c, TEST_NOW)).unwrap();
    let tcb = v.tcb().unwrap();
    assert_eq!(tcb.platform.status, TcbStatus::SWHardeningNeeded);
    assert_eq!(tcb.qe.status, TcbStatus::UpToDate);
    assert_eq!(tcb.pck.fmspc, d.params.fmspc);
    assert_eq!(tcb.pck.pcesvn, 13);
    assert_eq!(tcb.tcb_evaluation_data_number, 19);
    assert_eq!(tcb.collateral_next_update, TEST_NOW + 16 * 86_400);
    assert_eq!(v.report_body().mrenclave, [0xe1; 32]);

    // Without collateral the same quote verifies with no verdict; pinned to Intel's key it
    // does not verify at all.
    let plain = verify(
        &quote,
        &VerifyOptions::pinned(d.root.clone(), time(TEST_NOW)),
    )
    .unwrap();
    assert!(plain.tcb().is_none());
    let err = verify(
        &quote,
        &VerifyOptions::new(time(TEST_NOW)).with_collateral(c),
    )
    .unwrap_err();
    // The chain is judged before the collateral: a chain error, not a CRL one.
    assert!(
        matches!(
            err,
            E::ChainUntrusted {
                anchor: "Intel SGX Root CA key",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn matches_tcb_levels_and_converges_statuses_as_dcap_qvl_does() {
    let c = CollateralParams::default();
    for (components, pcesvn, qe_isvsvn, status, advisories) in [
        (
            comps(&[11, 11, 2, 2, 255, 1, 12]),
            13,
            8,
            TcbStatus::SWHardeningNeeded,
            vec!["INTEL-SA-00615"],
        ),
        // Higher than every level: the first level.
        (
            comps(&[20, 20, 9, 9, 255, 9, 20, 3]),
            20,
            9,
            TcbStatus::SWHardeningNeeded,
            vec!["INTEL-SA-00615"],
        ),
        // Component 7 below level 1's: level 2.
        (
            comps(&[11, 11, 2, 2, 255, 1, 0]),
            13,
            8,
            TcbStatus::ConfigurationAndSWHardeningNeeded,
            vec!["INTEL-SA-00289", "INTEL-SA-00615"],
        ),
        // Component 2 below levels 1 and 2: level 3.
        (
            comps(&[11, 10, 2, 2, 255, 1, 12]),
            13,
            8,
            TcbStatus::OutOfDate,
            vec!["INTEL-SA-00828", "INTEL-SA-00615"],
        ),
        (
            comps(&[10, 10, 2, 2, 255, 1, 0]),
            13,
            8,
            TcbStatus::OutOfDateConfigurationNeeded,
            vec!["INTEL-SA-00289", "INTEL-SA-00828"],
        ),
        // An out-of-date QE makes an SW-hardening platform OutOfDate; advisories merge.
        (
            comps(&[11, 11, 2, 2, 255, 1, 12]),
            13,
            6,
            TcbStatus::OutOfDate,
            vec!["INTEL-SA-00615"],
        ),
        (
            comps(&[11, 11, 2, 2, 255, 1, 0]),
            13,
            7,
            TcbStatus::OutOfDateConfigurationNeeded,
            vec!["INTEL-SA-00289", "INTEL-SA-00615"],
        ),
        (
            comps(&[10, 10, 2, 2, 255, 1, 0]),
            13,
            2,
            TcbStatus::OutOfDateConfigurationNeeded,
            vec![
                "INTEL-SA-00289",
                "INTEL-SA-00828",
                "INTEL-SA-00219",
                "INTEL-SA-00615",
            ],
        ),
    ] {
        let d = deployment_with_tcb(components, pcesvn);
        let quote = d.quote(&QuoteParams {
            qe_isvsvn,
            ..QuoteParams::default()
        });
        both_accept(&d, &quote, &d.collateral(&c), status, &advisories);
    }
}

#[test]
fn reports_up_to_date_and_configuration_needed_levels() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    for status in [
        TcbStatus::UpToDate,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::SWHardeningNeeded,
        TcbStatus::OutOfDate,
    ] {
        let mut c = CollateralParams::default();
        c.tcb_levels.insert(
            0,
            TcbLevelParams {
                components: d.params.tcb_components,
                pcesvn: 13,
                status,
                advisory_ids: Vec::new(),
            },
        );
        both_accept(&d, &quote, &d.collateral(&c), status, &[]);
    }
}

#[test]
fn picks_levels_in_intel_s_order_not_the_json_order() {
    // The same levels, lowest first: Intel's QVL sorts them, so the verdict does not change.
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let mut c = CollateralParams::default();
    c.tcb_levels.reverse();
    both_accept(
        &d,
        &quote,
        &d.collateral(&c),
        TcbStatus::SWHardeningNeeded,
        &["INTEL-SA-00615"],
    );
}

#[test]
fn refuses_revoked_tcb_levels_of_the_platform_and_of_the_qe() {
    let c = CollateralParams::default();
    let d = deployment_with_tcb(comps(&[5, 5, 2, 2, 255, 1, 0]), 5);
    let err = both_refuse(
        &d,
        &d.quote(&QuoteParams::default()),
        &d.collateral(&c),
        TEST_NOW,
    );
    match &err {
        E::TcbRevoked {
            platform,
            qe,
            advisory_ids,
        } => {
            assert_eq!((*platform, *qe), (TcbStatus::Revoked, TcbStatus::UpToDate));
            assert_eq!(advisory_ids, &["INTEL-SA-00233"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("TCB status: Revoked"), "{err}");

    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams {
        qe_isvsvn: 1,
        ..QuoteParams::default()
    });
    let err = both_refuse(&d, &quote, &d.collateral(&c), TEST_NOW);
    assert!(
        matches!(
            err,
            E::TcbRevoked {
                qe: TcbStatus::Revoked,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn refuses_a_platform_or_qe_below_every_level() {
    let c = CollateralParams::default();
    let d = deployment_with_tcb(comps(&[1, 1, 1, 1, 1, 1, 1]), 13);
    let err = both_refuse(
        &d,
        &d.quote(&QuoteParams::default()),
        &d.collateral(&c),
        TEST_NOW,
    );
    assert!(
        matches!(err, E::TcbLevelNotFound { pcesvn: 13, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("TCB level:"), "{err}");

    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams {
        qe_isvsvn: 0,
        ..QuoteParams::default()
    });
    let err = both_refuse(&d, &quote, &d.collateral(&c), TEST_NOW);
    assert!(
        matches!(err, E::QeTcbLevelNotFound { isvsvn: 0 }),
        "{err:?}"
    );
}

#[test]
fn refuses_a_revoked_pck_leaf_pck_ca_or_tcb_signer_naming_it() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    for (params, chain, subject, crl) in [
        (
            CollateralParams {
                revoke_pck_leaf: true,
                ..CollateralParams::default()
            },
            "PCK certificate",
            "Coffer Test PCK Certificate",
            "PCK CRL",
        ),
        (
            CollateralParams {
                revoke_pck_ca: true,
                ..CollateralParams::default()
            },
            "PCK certificate",
            "Coffer Test PCK Processor CA",
            "root CA CRL",
        ),
        (
            CollateralParams {
                revoke_tcb_signer: true,
                ..CollateralParams::default()
            },
            "TCB Info signer",
            "Coffer Test TCB Signing",
            "root CA CRL",
        ),
    ] {
        let err = both_refuse(&d, &quote, &d.collateral(&params), TEST_NOW);
        match &err {
            E::CertificateRevoked {
                chain: ch,
                subject: s,
                crl: c,
                ..
            } => {
                assert_eq!((*ch, *c), (chain, crl), "{err}");
                assert!(s.contains(subject), "{err}");
            }
            other => panic!("{subject}: expected CertificateRevoked, got {other:?}"),
        }
        assert!(err.to_string().contains("is revoked by the"), "{err}");
    }
}

#[test]
fn refuses_stale_and_not_yet_valid_collateral_at_the_injected_time() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let day = 86_400;

    // TCB Info and QE Identity stale, CRLs fresh.
    let c = d.collateral(&CollateralParams {
        next_update: at(TEST_NOW - day),
        issue_date: at(TEST_NOW - 30 * day),
        ..CollateralParams::default()
    });
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralStale {
                item: "TCB Info",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("collateral TCB Info: stale"),
        "{err}"
    );
    // The same collateral verifies at a time it was fresh.
    ours(&d, &quote, &c, TEST_NOW - 2 * day).unwrap();
    theirs(&d, &quote, &c, TEST_NOW - 2 * day).unwrap();

    // CRLs stale.
    let c = d.collateral(&CollateralParams {
        crl_next_update: at(TEST_NOW - day),
        crl_this_update: at(TEST_NOW - 30 * day),
        ..CollateralParams::default()
    });
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralStale {
                item: "root CA CRL",
                ..
            }
        ),
        "{err:?}"
    );

    // Issued after the verification time.
    let c = d.collateral(&CollateralParams::default());
    let err = both_refuse(&d, &quote, &c, TEST_NOW - 20 * day);
    assert!(matches!(err, E::CollateralNotYetValid { .. }), "{err:?}");
    // Long after: stale.
    let err = both_refuse(&d, &quote, &c, TEST_NOW + 20 * day);
    assert!(matches!(err, E::CollateralStale { .. }), "{err:?}");
}

#[test]
fn refuses_an_expired_pck_leaf_or_tcb_signer_naming_it() {
    for (params, subject) in [
        (
            DeploymentParams {
                leaf_not_after: at(TEST_NOW - 3600),
                ..DeploymentParams::default()
            },
            "Coffer Test PCK Certificate",
        ),
        (
            DeploymentParams {
                tcb_signer_not_after: at(TEST_NOW - 3600),
                ..DeploymentParams::default()
            },
            "Coffer Test TCB Signing",
        ),
    ] {
        let d = Deployment::new(params);
        let quote = d.quote(&QuoteParams::default());
        let err = both_refuse(
            &d,
            &quote,
            &d.collateral(&CollateralParams::default()),
            TEST_NOW,
        );
        match &err {
            E::CertificateExpired { subject: s, .. } => assert!(s.contains(subject), "{err}"),
            other => panic!("{subject}: expected CertificateExpired, got {other:?}"),
        }
    }
}

#[test]
fn refuses_tampered_tcb_info_and_qe_identity_but_accepts_them_re_signed() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let good = d.collateral(&CollateralParams::default());

    // A verifier that trusted the JSON would now say UpToDate.
    let mut c = good.clone();
    c.tcb_info = c.tcb_info.replacen("SWHardeningNeeded", "UpToDate", 1);
    assert_ne!(c.tcb_info, good.tcb_info);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(err, E::CollateralSignature { item: "TCB Info" }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("collateral TCB Info:"), "{err}");
    // Re-signed by the TCB signer, the change is accepted: the signature is what refused it.
    c.tcb_info_signature = d.sign_collateral(&c.tcb_info);
    both_accept(&d, &quote, &c, TcbStatus::UpToDate, &["INTEL-SA-00615"]);

    // Whitespace is text too: the signature covers the exact bytes.
    let mut c = good.clone();
    c.tcb_info = c.tcb_info.replacen(",", ", ", 1);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(err, E::CollateralSignature { item: "TCB Info" }),
        "{err:?}"
    );

    let mut c = good.clone();
    c.tcb_info_signature[5] ^= 1;
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(err, E::CollateralSignature { item: "TCB Info" }),
        "{err:?}"
    );

    let mut c = good.clone();
    c.qe_identity = c.qe_identity.replacen("\"isvsvn\":8", "\"isvsvn\":9", 1);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralSignature {
                item: "QE Identity"
            }
        ),
        "{err:?}"
    );

    let mut c = good;
    c.qe_identity_signature.truncate(63);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralMalformed {
                item: "QE Identity",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn refuses_collateral_of_another_deployment_with_the_same_names() {
    // Same names, other keys: a forger's root, PCK CA and TCB signer.
    let d = Deployment::new(DeploymentParams::default());
    let forger = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let good = d.collateral(&CollateralParams::default());
    let forged = forger.collateral(&CollateralParams::default());

    let mut c = good.clone();
    c.root_ca_crl = forged.root_ca_crl.clone();
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CrlSignature {
                item: "root CA CRL",
                ..
            }
        ),
        "{err:?}"
    );

    let mut c = good.clone();
    c.pck_crl = forged.pck_crl.clone();
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CrlSignature {
                item: "PCK CRL",
                ..
            }
        ),
        "{err:?}"
    );

    // The forger's TCB Info, signature and signer chain, consistent among themselves.
    let mut c = good.clone();
    c.tcb_info = forged.tcb_info.clone();
    c.tcb_info_signature = forged.tcb_info_signature.clone();
    c.tcb_info_issuer_chain = forged.tcb_info_issuer_chain.clone();
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralChainUntrusted {
                item: "TCB Info signer",
                ..
            }
        ),
        "{err:?}"
    );

    let mut c = good.clone();
    c.qe_identity = forged.qe_identity.clone();
    c.qe_identity_signature = forged.qe_identity_signature.clone();
    c.qe_identity_issuer_chain = forged.qe_identity_issuer_chain.clone();
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralChainUntrusted {
                item: "QE Identity signer",
                ..
            }
        ),
        "{err:?}"
    );

    // The deployment's own chain, the forger's signature.
    let mut c = good;
    c.tcb_info_signature = forger.sign_collateral(&c.tcb_info);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(err, E::CollateralSignature { item: "TCB Info" }),
        "{err:?}"
    );
}

#[test]
fn refuses_collateral_for_another_platform_or_qe() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());

    let c = d.collateral(&CollateralParams {
        fmspc: Some([0x00, 0xa0, 0x67, 0x11, 0x00, 0x00]),
        ..CollateralParams::default()
    });
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    match &err {
        E::FmspcMismatch { pck, tcb_info } => {
            assert_eq!(
                (pck.as_str(), tcb_info.as_str()),
                ("00906ea10000", "00a067110000")
            )
        }
        other => panic!("{other:?}"),
    }

    // dcap-qvl does not compare the PCE-ID; Intel's QVL and Coffer do.
    let c = d.collateral(&CollateralParams {
        pce_id: Some([0x01, 0x00]),
        ..CollateralParams::default()
    });
    let err = ours(&d, &quote, &c, TEST_NOW).unwrap_err();
    assert!(matches!(err, E::PceIdMismatch { .. }), "{err:?}");

    let c = d.collateral(&CollateralParams {
        qe_mrsigner: [0x77; 32],
        ..CollateralParams::default()
    });
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::QeIdentityMismatch {
                field: "MRSIGNER",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("QE identity:"), "{err}");

    let c = d.collateral(&CollateralParams {
        qe_isvprodid: 2,
        ..CollateralParams::default()
    });
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::QeIdentityMismatch {
                field: "ISVPRODID",
                ..
            }
        ),
        "{err:?}"
    );

    // A debug QE: DEBUG is inside the attributes mask.
    let mut q = QuoteParams::default();
    q.qe_attributes.flags |= AttributesFlags::DEBUG;
    let err = both_refuse(
        &d,
        &d.quote(&q),
        &d.collateral(&CollateralParams::default()),
        TEST_NOW,
    );
    assert!(
        matches!(
            err,
            E::QeIdentityMismatch {
                field: "ATTRIBUTES (masked)",
                ..
            }
        ),
        "{err:?}"
    );

    let q = QuoteParams {
        qe_miscselect: 1,
        ..QuoteParams::default()
    };
    let err = both_refuse(
        &d,
        &d.quote(&q),
        &d.collateral(&CollateralParams::default()),
        TEST_NOW,
    );
    assert!(
        matches!(
            err,
            E::QeIdentityMismatch {
                field: "MISCSELECT (masked)",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn refuses_pck_certificates_without_a_consistent_sgx_extension() {
    for params in [
        DeploymentParams {
            sgx_extension: false,
            ..DeploymentParams::default()
        },
        DeploymentParams {
            cpusvn_override: Some([0xff; 16]),
            ..DeploymentParams::default()
        },
    ] {
        let d = Deployment::new(params);
        let quote = d.quote(&QuoteParams::default());
        let c = d.collateral(&CollateralParams::default());
        let err = ours(&d, &quote, &c, TEST_NOW).unwrap_err();
        assert!(matches!(err, E::PckExtension { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("PCK certificate SGX extension:"),
            "{err}"
        );
        // Without collateral the extension is not read.
        verify(
            &quote,
            &VerifyOptions::pinned(d.root.clone(), time(TEST_NOW)),
        )
        .unwrap();
    }
    let d = Deployment::new(DeploymentParams {
        sgx_extension: false,
        ..DeploymentParams::default()
    });
    let quote = d.quote(&QuoteParams::default());
    assert!(
        theirs(
            &d,
            &quote,
            &d.collateral(&CollateralParams::default()),
            TEST_NOW
        )
        .is_err()
    );
}

#[test]
fn refuses_tcb_info_of_another_kind_or_with_unknown_statuses_even_when_signed() {
    let d = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let c = d.collateral(&CollateralParams {
        tcb_info_version: 2,
        ..CollateralParams::default()
    });
    let err = ours(&d, &quote, &c, TEST_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            E::CollateralUnsupported {
                item: "TCB Info",
                ..
            }
        ),
        "{err:?}"
    );

    let mut c = d.collateral(&CollateralParams::default());
    c.tcb_info = c.tcb_info.replacen("SWHardeningNeeded", "Fine", 1);
    c.tcb_info_signature = d.sign_collateral(&c.tcb_info);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralMalformed {
                item: "TCB Info",
                ..
            }
        ),
        "{err:?}"
    );

    let mut c = d.collateral(&CollateralParams::default());
    c.qe_identity = c
        .qe_identity
        .replacen("\"id\":\"QE\"", "\"id\":\"TD_QE\"", 1);
    c.qe_identity_signature = d.sign_collateral(&c.qe_identity);
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralUnsupported {
                item: "QE Identity",
                ..
            }
        ),
        "{err:?}"
    );

    // Garbage CRL bytes.
    let mut c = d.collateral(&CollateralParams::default());
    c.pck_crl = vec![0x30, 0x03, 0x02, 0x01, 0x01];
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    assert!(
        matches!(
            err,
            E::CollateralMalformed {
                item: "PCK CRL",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn verifies_v4_quotes_and_own_root_chains_with_collateral() {
    let d = Deployment::new(DeploymentParams::default());
    let c = d.collateral(&CollateralParams::default());
    let v4 = d.quote(&QuoteParams {
        version: QuoteVersion::V4,
        ..QuoteParams::default()
    });
    assert_eq!(
        ours(&d, &v4, &c, TEST_NOW).unwrap().status,
        TcbStatus::SWHardeningNeeded
    );

    // Unpinned, the chain's own root anchors the collateral's signers too.
    let quote = d.quote(&QuoteParams::default());
    let v = verify(
        &quote,
        &VerifyOptions::unpinned(time(TEST_NOW)).with_collateral(c),
    )
    .unwrap();
    assert_eq!(v.root_trust(), RootTrust::NotPinned);
    assert_eq!(v.tcb().unwrap().status, TcbStatus::SWHardeningNeeded);
    assert_eq!(
        VerifyOptions::pinned(d.root.clone(), time(TEST_NOW)).root,
        TrustRoot::Certificate(d.root.clone())
    );
}

#[test]
fn collateral_json_is_dcap_qvl_s_shape_both_ways() {
    let d = Deployment::new(DeploymentParams::default());
    let c = d.collateral(&CollateralParams::default());
    let json = c.to_json();
    let qc: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&json).unwrap();
    assert_eq!(qc.root_ca_crl, c.root_ca_crl);
    assert_eq!(qc.tcb_info, c.tcb_info);
    assert_eq!(qc.qe_identity_signature, c.qe_identity_signature);
    let back = serde_json::to_string(&qc).unwrap();
    assert_eq!(Collateral::from_json(back.as_bytes()).unwrap(), c);

    for (bad, what) in [
        (b"{".to_vec(), "truncated"),
        (format!("{json} {{}}").into_bytes(), "trailing data"),
        (
            json.replace("\"pck_crl\"", "\"pck_crl_x\"").into_bytes(),
            "a missing key",
        ),
        (
            json.replacen("\"root_ca_crl\": \"", "\"root_ca_crl\": \"zz", 1)
                .into_bytes(),
            "bad hex",
        ),
    ] {
        assert!(
            matches!(Collateral::from_json(&bad), Err(CollateralError::Json(_))),
            "{what}"
        );
    }
    let huge = vec![b' '; coffer_dcap::MAX_COLLATERAL_SIZE + 1];
    assert!(matches!(
        Collateral::from_json(&huge),
        Err(CollateralError::TooLarge { .. })
    ));
}

#[test]
fn a_quote_re_encoded_by_coffer_is_what_dcap_qvl_verified() {
    // The test deployment's quotes go through Coffer's codec; dcap-qvl parses the same bytes.
    let d = Deployment::new(DeploymentParams::default());
    let bytes = d.quote(&QuoteParams::default());
    let q = coffer_abi::quote::Quote::from_bytes(&bytes).unwrap();
    assert_eq!(q.to_bytes(), bytes);
    let theirs = dcap_qvl::quote::Quote::parse(&bytes).unwrap();
    assert_eq!(theirs.report.as_sgx().unwrap().mr_enclave, [0xe1; 32]);
}

#[test]
fn refuses_a_pck_crl_of_another_pck_ca_and_a_qe_level_with_a_platform_only_status() {
    // A leaf issued by a "Platform CA", collateral carrying a "Processor CA" CRL (as when the
    // wrong `ca=` was fetched): the PCK CRL does not cover the leaf.
    let d = Deployment::new(DeploymentParams {
        pck_ca_cn: "Coffer Test PCK Platform CA".into(),
        ..DeploymentParams::default()
    });
    let other = Deployment::new(DeploymentParams::default());
    let quote = d.quote(&QuoteParams::default());
    let mut c = d.collateral(&CollateralParams::default());
    c.pck_crl = other.collateral(&CollateralParams::default()).pck_crl;
    let err = both_refuse(&d, &quote, &c, TEST_NOW);
    match &err {
        E::CrlIssuerMismatch {
            item,
            expected,
            found,
        } => {
            assert_eq!(*item, "PCK CRL");
            assert!(expected.contains("Platform CA"), "{err}");
            assert!(found.contains("Processor CA"), "{err}");
        }
        other => panic!("{other:?}"),
    }

    // SWHardeningNeeded is a platform status; Intel's QVL refuses it in a QE Identity.
    let d = Deployment::new(DeploymentParams::default());
    let mut params = CollateralParams::default();
    params.qe_levels[0].status = TcbStatus::SWHardeningNeeded;
    let err = both_refuse(
        &d,
        &d.quote(&QuoteParams::default()),
        &d.collateral(&params),
        TEST_NOW,
    );
    assert!(
        matches!(
            err,
            E::TcbStatusInvalid {
                item: "QE Identity",
                ..
            }
        ),
        "{err:?}"
    );
}
