//! The deployment CA end to end in the library: init, provision nodes whose hardening facts
//! differ, publish collateral, and verify quotes signed with the provisioned PCK keys with
//! coffer-dcap and with dcap-qvl (an independent verifier), pinned to the deployment root.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::quote::Quote;
use coffer_abi::{Attributes, AttributesFlags, Codec};
use coffer_ca::test_support::{QuoteParams, quote_signed_by};
use coffer_ca::{Authority, CaError, QeIdentity, tcb};
use coffer_dcap::{
    Collateral, QuoteVerificationError as E, RootTrust, TcbStatus, VerifyOptions, verify,
};
use coffer_platform::tcb::{
    ADVISORIES, HostFacts, KernelOption, Lockdown, LockdownState, ModuleLoading, ProcMemForce,
    evaluate,
};
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;

/// 2026-06-01T00:00:00Z.
const NOW: u64 = 1_780_272_000;

fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The Coffer node profile (docs/node-profile.md) with every channel closed.
fn hardened() -> HostFacts {
    HostFacts {
        kernel_config: Some("/proc/config.gz".into()),
        bpf_syscall: KernelOption::Enabled,
        bpf_events: KernelOption::Disabled,
        uprobes: KernelOption::Disabled,
        perf_events: KernelOption::Disabled,
        perf_event_paranoid: Some(3),
        unprivileged_bpf_disabled: Some(2),
        yama_ptrace_scope: Some(3),
        proc_mem_force: ProcMemForce::Never,
        lockdown: LockdownState::Mode(Lockdown::Confidentiality),
        modules: ModuleLoading::Unsupported,
        root_key_in_file: false,
        secret_memory: true,
        euid: 0,
    }
}

/// A stock distribution kernel.
fn stock() -> HostFacts {
    HostFacts {
        bpf_events: KernelOption::Enabled,
        uprobes: KernelOption::Enabled,
        perf_events: KernelOption::Enabled,
        perf_event_paranoid: Some(2),
        yama_ptrace_scope: None,
        proc_mem_force: ProcMemForce::Always,
        lockdown: LockdownState::Mode(Lockdown::Integrity),
        modules: ModuleLoading::Enabled,
        root_key_in_file: true,
        ..hardened()
    }
}

/// A node whose daemon runs without root and without secret memory.
fn misconfigured() -> HostFacts {
    HostFacts {
        secret_memory: false,
        euid: 1000,
        ..hardened()
    }
}

/// The quote a node's quoting identity would make: its QE report signed with the node's
/// `pck.key`, its chain `pck_chain.pem`, its QE identity `qe_identity.json`.
fn node_quote(state: &Path, cpusvn: [u8; 16]) -> Vec<u8> {
    let key_pem = std::fs::read_to_string(state.join("pck.key")).unwrap();
    let key = SigningKey::from_pkcs8_der(pem::parse(&key_pem).unwrap().contents()).unwrap();
    let chain = std::fs::read(state.join("pck_chain.pem")).unwrap();
    let qe: QeIdentity =
        serde_json::from_slice(&std::fs::read(state.join("qe_identity.json")).unwrap()).unwrap();
    let q = QuoteParams {
        qe_mrsigner: qe.mrsigner,
        qe_isvprodid: qe.isvprodid,
        qe_isvsvn: qe.isvsvn,
        qe_attributes: Attributes {
            flags: AttributesFlags::from_bits_retain(u64::from_le_bytes(
                qe.attributes[..8].try_into().unwrap(),
            )),
            xfrm: 0xe7,
        },
        qe_miscselect: qe.miscselect,
        qe_vendor_id: qe.qe_vendor_id,
        ..QuoteParams::default()
    };
    quote_signed_by(&key, chain, cpusvn, tcb::PCESVN, &q)
}

fn opts(ca: &Authority, c: &Collateral, now: u64) -> VerifyOptions {
    VerifyOptions::pinned(ca.root().clone(), time(now)).with_collateral(c.clone())
}

fn dcap_qvl(
    ca: &Authority,
    quote: &[u8],
    c: &Collateral,
    now: u64,
) -> Result<(String, Vec<String>), String> {
    let qc: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&c.to_json()).unwrap();
    dcap_qvl::verify::QuoteVerifier::new(ca.root().to_vec())
        .verify(quote, &qc, now)
        .map(|r| (r.status, r.advisory_ids))
        .map_err(|e| format!("{e:#}"))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn provisioned_nodes_verify_to_the_deployment_root_with_the_platform_s_tcb_status() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = Authority::init(&ca_dir, time(NOW - 86_400)).unwrap();
    let nodes = [
        ("hardened", hardened()),
        ("stock", stock()),
        ("misconfigured", misconfigured()),
        ("this host", HostFacts::probe()),
    ];
    let mut provisioned = Vec::new();
    for (i, (name, facts)) in nodes.iter().enumerate() {
        let status = evaluate(facts);
        let state = dir.path().join(format!("node{i}"));
        let p = ca.provision(&state, &status, time(NOW - 3600)).unwrap();
        // The certificate carries one component per advisory: closed 1, open 0.
        for (a, svn) in ADVISORIES.iter().zip(p.record.tcb_components) {
            let open = status.advisory_ids().any(|id| id == a.id);
            assert_eq!(svn, u8::from(!open), "{name}: {}", a.id);
        }
        assert_eq!(
            p.record.tcb_components[ADVISORIES.len()..],
            [0; 5][..16 - ADVISORIES.len()]
        );
        provisioned.push((name, status, state, p));
    }
    let signed = ca.collateral(time(NOW), 30).unwrap();
    let c = &signed.collateral;
    for (name, status, state, p) in &provisioned {
        let quote = node_quote(state, p.record.tcb_components);
        // Without collateral: the chain verifies to the pinned deployment root.
        let v = verify(&quote, &VerifyOptions::pinned(ca.root().clone(), time(NOW))).unwrap();
        assert_eq!(v.root_trust(), RootTrust::Pinned, "{name}");
        // With it: the platform's level and advisories, as `platform status` reports them.
        let v = verify(&quote, &opts(&ca, c, NOW)).unwrap();
        let t = v.tcb().unwrap();
        assert_eq!(t.status.as_str(), status.level.as_str(), "{name}");
        let ids: Vec<&str> = status.advisory_ids().collect();
        assert_eq!(t.advisory_ids, ids, "{name}");
        assert_eq!(t.pck.fmspc, coffer_ca::FMSPC);
        // dcap-qvl reaches the same status and advisories.
        let (s, a) = dcap_qvl(&ca, &quote, c, NOW).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s, status.level.as_str(), "{name}");
        assert_eq!(a, ids, "{name}");
    }
    let levels = ca.tcb_levels().unwrap();
    assert_eq!(levels[0].status, TcbStatus::UpToDate);
    assert_eq!(levels[0].components, tcb::all_closed());

    // A quote from another deployment's node is refused.
    let other = Authority::init(&dir.path().join("other"), time(NOW - 86_400)).unwrap();
    let state = dir.path().join("stranger");
    let p = other
        .provision(&state, &evaluate(&hardened()), time(NOW - 3600))
        .unwrap();
    let quote = node_quote(&state, p.record.tcb_components);
    let e = verify(&quote, &opts(&ca, c, NOW)).unwrap_err();
    assert!(matches!(e, E::ChainUntrusted { .. }), "{e}");
    assert!(dcap_qvl(&ca, &quote, c, NOW).is_err());
}

#[test]
fn the_sgx_extension_reads_with_coffer_dcap_and_dcap_qvl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::init(&dir.path().join("ca"), time(NOW)).unwrap();
    let state = dir.path().join("node");
    let p = ca
        .provision(&state, &evaluate(&stock()), time(NOW))
        .unwrap();
    let quote = node_quote(&state, p.record.tcb_components);
    let info = coffer_dcap::unverified_pck_info(&Quote::from_bytes(&quote).unwrap()).unwrap();
    let x = &info.extension;
    assert_eq!(x.ppid, p.record.ppid);
    assert_eq!(x.tcb_components, p.record.tcb_components);
    assert_eq!(x.cpusvn, p.record.tcb_components);
    assert_eq!(x.pcesvn, tcb::PCESVN);
    assert_eq!(x.pce_id, coffer_ca::PCE_ID);
    assert_eq!(x.fmspc, coffer_ca::FMSPC);
    assert_eq!(info.ca, "processor");

    let q = dcap_qvl::intel::parse_pck_extension(&p.pck_leaf).unwrap();
    assert_eq!(q.ppid, p.record.ppid);
    assert_eq!(q.cpu_svn, p.record.tcb_components);
    assert_eq!(q.pce_svn, tcb::PCESVN);
    assert_eq!(q.pce_id, coffer_ca::PCE_ID);
    assert_eq!(q.fmspc, coffer_ca::FMSPC);
    assert_eq!(q.sgx_type, 0);
}

#[test]
fn a_revoked_pck_is_refused_by_both_verifiers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::init(&dir.path().join("ca"), time(NOW - 86_400)).unwrap();
    let state = dir.path().join("node");
    let p = ca
        .provision(&state, &evaluate(&hardened()), time(NOW - 3600))
        .unwrap();
    let quote = node_quote(&state, p.record.tcb_components);
    let before = ca.collateral(time(NOW), 30).unwrap().collateral;
    verify(&quote, &opts(&ca, &before, NOW)).unwrap();

    let serial = hex::encode(&p.record.serial);
    ca.revoke(&serial, time(NOW)).unwrap();
    let after = ca.collateral(time(NOW), 30).unwrap().collateral;
    let e = verify(&quote, &opts(&ca, &after, NOW)).unwrap_err();
    assert!(
        matches!(
            e,
            E::CertificateRevoked {
                chain: "PCK certificate",
                ..
            }
        ),
        "{e}"
    );
    assert!(dcap_qvl(&ca, &quote, &after, NOW).is_err());

    assert!(matches!(
        ca.revoke(&serial, time(NOW)),
        Err(CaError::AlreadyRevoked { .. })
    ));
    assert!(matches!(
        ca.revoke("0badc0de", time(NOW)),
        Err(CaError::UnknownSerial { .. })
    ));
    assert!(matches!(
        ca.revoke("not hex", time(NOW)),
        Err(CaError::BadSerial { .. })
    ));
}

#[test]
fn collateral_outside_its_dates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::init(&dir.path().join("ca"), time(NOW - 86_400)).unwrap();
    let state = dir.path().join("node");
    let p = ca
        .provision(&state, &evaluate(&hardened()), time(NOW - 3600))
        .unwrap();
    let quote = node_quote(&state, p.record.tcb_components);
    let c = ca.collateral(time(NOW), 7).unwrap().collateral;
    verify(&quote, &opts(&ca, &c, NOW + 7 * 86_400 - 60)).unwrap();
    let stale = NOW + 8 * 86_400;
    let e = verify(&quote, &opts(&ca, &c, stale)).unwrap_err();
    assert!(matches!(e, E::CollateralStale { .. }), "{e}");
    assert!(dcap_qvl(&ca, &quote, &c, stale).is_err());
    let e = verify(&quote, &opts(&ca, &c, NOW - 60)).unwrap_err();
    assert!(matches!(e, E::CollateralNotYetValid { .. }), "{e}");
}

#[test]
fn published_collateral_is_intel_s_pcs_format() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::init(&dir.path().join("ca"), time(NOW)).unwrap();
    let out = dir.path().join("collateral");
    let s = ca.publish_collateral(&out, time(NOW), 30).unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tcb_info.json")).unwrap()).unwrap();
    let inner: serde_json::Value = serde_json::from_str(&s.collateral.tcb_info).unwrap();
    assert_eq!(body["tcbInfo"], inner);
    assert_eq!(
        body["signature"],
        hex::encode(&s.collateral.tcb_info_signature)
    );
    assert_eq!(inner["id"], "SGX");
    assert_eq!(inner["version"], 3);
    assert_eq!(inner["tcbType"], 0);
    assert_eq!(inner["fmspc"], "C0FFE5000000");
    assert_eq!(
        inner["tcbLevels"][0]["tcb"]["sgxtcbcomponents"]
            .as_array()
            .unwrap()
            .len(),
        16
    );
    // Intel's field order, compact.
    assert!(s.collateral.tcb_info.starts_with(r#"{"id":"SGX","version":3,"issueDate":"2026-06-01T00:00:00Z","nextUpdate":"2026-07-01T00:00:00Z","fmspc":"C0FFE5000000","pceId":"0000","tcbType":0,"#), "{}", s.collateral.tcb_info);
    assert_eq!(s.collateral.tcb_info_signature.len(), 64);
    let qe: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("qe_identity.json")).unwrap()).unwrap();
    assert_eq!(qe["enclaveIdentity"]["id"], "QE");
    assert_eq!(qe["enclaveIdentity"]["version"], 2);
    let file = Collateral::from_json(&std::fs::read(out.join("collateral.json")).unwrap()).unwrap();
    assert_eq!(file, s.collateral);
    assert_eq!(
        std::fs::read(out.join("pck_ca.crl")).unwrap(),
        s.collateral.pck_crl
    );
    // Publishing again replaces the collateral.
    ca.publish_collateral(&out, time(NOW + 86_400), 30).unwrap();
}

#[test]
fn keys_are_private_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = Authority::init(&ca_dir, time(NOW)).unwrap();
    assert_eq!(mode(&ca_dir), 0o700);
    for key in ["root.key", "pck_ca.key", "tcb_signing.key"] {
        assert_eq!(mode(&ca_dir.join(key)), 0o600, "{key}");
    }
    for cert in ["root.pem", "pck_ca.pem", "tcb_signing.pem", "ca.json"] {
        assert_eq!(mode(&ca_dir.join(cert)), 0o644, "{cert}");
    }
    let root_key = std::fs::read(ca_dir.join("root.key")).unwrap();
    let e = Authority::init(&ca_dir, time(NOW)).unwrap_err();
    assert!(matches!(e, CaError::AlreadyInitialized { .. }), "{e}");
    assert_eq!(std::fs::read(ca_dir.join("root.key")).unwrap(), root_key);
    // Reopened, it is the same CA.
    assert_eq!(Authority::open(&ca_dir).unwrap().root(), ca.root());

    let state = dir.path().join("node");
    ca.provision(&state, &evaluate(&hardened()), time(NOW))
        .unwrap();
    assert_eq!(mode(&state.join("pck.key")), 0o600);
    assert_eq!(mode(&state.join("pck_chain.pem")), 0o644);
    let pck_key = std::fs::read(state.join("pck.key")).unwrap();
    let e = ca
        .provision(&state, &evaluate(&stock()), time(NOW))
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyProvisioned { .. }), "{e}");
    assert_eq!(std::fs::read(state.join("pck.key")).unwrap(), pck_key);
    assert_eq!(ca.issued().unwrap().len(), 1);

    let e = Authority::open(&dir.path().join("nothing")).unwrap_err();
    assert!(matches!(e, CaError::NotACa { .. }), "{e}");
    assert!(e.to_string().contains("coffer ca init"), "{e}");
}

#[test]
fn a_damaged_ca_directory_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    Authority::init(&ca_dir, time(NOW)).unwrap();
    for (file, bytes, want) in [
        ("tcb_signing.key", &b"not a key"[..], "tcb_signing.key"),
        ("root.pem", &b"\xff\xfe"[..], "root.pem"),
        ("ca.json", &b"{\"format\":1"[..], "ca.json"),
    ] {
        let path = ca_dir.join(file);
        let saved = std::fs::read(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let e = Authority::open(&ca_dir).unwrap_err();
        assert!(e.to_string().contains(want), "{file}: {e}");
        std::fs::write(&path, saved).unwrap();
    }
    Authority::open(&ca_dir).unwrap();
}

#[test]
fn concurrent_provisionings_of_one_node_leave_one_key_and_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::init(&dir.path().join("ca"), time(NOW)).unwrap();
    let state = dir.path().join("node");
    let status = evaluate(&hardened());
    let results: Vec<Result<_, CaError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| ca.provision(&state, &status, time(NOW))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one provisioning wins");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        let text = e.to_string();
        assert!(
            text.contains("already provisioned") || text.contains("never overwrites"),
            "{text}"
        );
    }
    // The key on disk is the key the chain on disk certifies.
    let key_pem = std::fs::read_to_string(state.join("pck.key")).unwrap();
    let key = SigningKey::from_pkcs8_der(pem::parse(&key_pem).unwrap().contents()).unwrap();
    let chain = std::fs::read(state.join("pck_chain.pem")).unwrap();
    let leaf = pem::parse_many(&chain).unwrap().remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.contents()).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.verifying_key().to_sec1_point(false).as_bytes()
    );
    assert_eq!(leaf.contents(), won[0].pck_leaf.as_ref());
    assert_eq!(ca.issued().unwrap().len(), 1);
}
