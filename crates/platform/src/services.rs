//! The CPU's part for an enclave: EGETKEY and EREPORT, answered with the identity the daemon
//! holds for that enclave (its SECS as the daemon built it at launch), never with anything the
//! enclave claims about itself.

use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::targetinfo::Targetinfo;
use coffer_abi::{Codec, ReportBody};
use coffer_cpu::PlatformRoot;
use coffer_proto::enclave::{DaemonReply, EnclaveMessage};

use crate::lost::code;

/// The longest lost or failure reason kept from an enclave (the channel header holds 256 bytes).
const MAX_REASON: usize = 256;

/// What the daemon does with a message from a running enclave.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this answer.
    Reply(DaemonReply),
    /// The enclave is lost: mark it so with this code and reason, and end it.
    Lost { code: u32, reason: String },
    /// Nothing to answer (a notification out of turn, logged).
    Ignore,
}

/// The platform's CPU: the root key and the KEYID every EREPORT of this daemon's run carries.
#[derive(Debug)]
pub struct CpuServices {
    root: PlatformRoot,
    /// Random per daemon start, as SGX's KEYID changes with each power cycle.
    report_keyid: [u8; 32],
}

fn clip(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default().to_owned()
}

impl CpuServices {
    pub fn new(root: PlatformRoot, report_keyid: [u8; 32]) -> Self {
        CpuServices { root, report_keyid }
    }

    /// The platform's CPUSVN.
    pub fn cpusvn(&self) -> [u8; 16] {
        self.root.cpusvn()
    }

    /// EGETKEY for the enclave whose identity (SECS) is `secs`: the socket's `Egetkey` and the
    /// key mailbox (`key_mailbox`) both derive here.
    pub fn egetkey(
        &self,
        secs: &ReportBody,
        req: &Keyrequest,
    ) -> Result<zeroize::Zeroizing<[u8; 16]>, coffer_cpu::EgetkeyError> {
        self.root.egetkey(secs, req)
    }

    /// Answers one message of the enclave whose identity (SECS) is `secs`.
    pub fn handle(&self, secs: &ReportBody, msg: EnclaveMessage) -> Outcome {
        match msg {
            EnclaveMessage::Egetkey { keyrequest } => {
                let req = match Keyrequest::from_bytes(&keyrequest) {
                    Ok(r) => r,
                    Err(e) => return Outcome::Reply(DaemonReply::Error(e.to_string())),
                };
                Outcome::Reply(match self.egetkey(secs, &req) {
                    Ok(key) => DaemonReply::Key(key.to_vec()),
                    Err(e) => DaemonReply::Error(e.to_string()),
                })
            }
            EnclaveMessage::Ereport {
                targetinfo,
                reportdata,
            } => {
                let target = match Targetinfo::from_bytes(&targetinfo) {
                    Ok(t) => t,
                    Err(e) => return Outcome::Reply(DaemonReply::Error(e.to_string())),
                };
                let Ok(reportdata) = <[u8; 64]>::try_from(reportdata.as_slice()) else {
                    return Outcome::Reply(DaemonReply::Error(format!(
                        "REPORTDATA must be 64 bytes, got {}",
                        reportdata.len()
                    )));
                };
                let report =
                    coffer_cpu::ereport(&self.root, secs, &target, &reportdata, &self.report_keyid);
                Outcome::Reply(DaemonReply::Report(report.to_bytes()))
            }
            EnclaveMessage::Quote { .. } | EnclaveMessage::QeTargetinfo => Outcome::Reply(
                DaemonReply::Error("quoting arrives with the attestation issue".into()),
            ),
            EnclaveMessage::Lost { reason } => Outcome::Lost {
                code: code::REPORTED,
                reason: clip(&reason),
            },
            EnclaveMessage::Failed { reason } => Outcome::Lost {
                code: code::REPORTED,
                reason: clip(&format!("the enclave failed: {reason}")),
            },
            EnclaveMessage::Ready { .. } => Outcome::Ignore,
            // The supervisor takes it with its descriptor (`key_mailbox`); here it has none.
            EnclaveMessage::KeyMailbox => Outcome::Reply(DaemonReply::Error(
                "a key mailbox comes with its descriptor".into(),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffer_abi::keyrequest::{KeyName, KeyPolicy};
    use coffer_abi::report::Report;
    use coffer_abi::{Attributes, AttributesFlags, FixedSize};

    use super::*;

    fn services() -> CpuServices {
        CpuServices::new(PlatformRoot::new([9; 16], [0; 16], [1; 16]), [5; 32])
    }

    fn secs(mrenclave: u8) -> ReportBody {
        ReportBody {
            mrenclave: [mrenclave; 32],
            mrsigner: [0xee; 32],
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 3,
            },
            cpusvn: [1; 16],
            ..ReportBody::default()
        }
    }

    fn key(out: Outcome) -> Vec<u8> {
        match out {
            Outcome::Reply(DaemonReply::Key(k)) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn derives_keys_from_the_daemon_held_identity() {
        let s = services();
        let req = Keyrequest {
            keyname: KeyName::SEAL_KEY,
            keypolicy: KeyPolicy::MRENCLAVE,
            cpusvn: [1; 16],
            ..Keyrequest::default()
        };
        let msg = || EnclaveMessage::Egetkey {
            keyrequest: req.to_bytes(),
        };
        let a = key(s.handle(&secs(1), msg()));
        let b = key(s.handle(&secs(2), msg()));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b, "two enclaves must not share a seal key");
        assert_eq!(a, key(s.handle(&secs(1), msg())));
    }

    #[test]
    fn makes_reports_the_target_can_verify() {
        let s = services();
        let me = secs(1);
        let target = secs(2);
        let out = s.handle(
            &me,
            EnclaveMessage::Ereport {
                targetinfo: Targetinfo::from_report_body(&target).to_bytes(),
                reportdata: vec![7; 64],
            },
        );
        let Outcome::Reply(DaemonReply::Report(bytes)) = out else {
            panic!("{out:?}")
        };
        assert_eq!(bytes.len(), Report::SIZE);
        let report = Report::from_bytes(&bytes).unwrap();
        assert_eq!(report.body.mrenclave, me.mrenclave);
        assert_eq!(report.body.reportdata, [7; 64]);
        assert_eq!(report.keyid, [5; 32]);
        coffer_cpu::verify_report(&s.root, &target, &report).unwrap();
        assert!(coffer_cpu::verify_report(&s.root, &secs(3), &report).is_err());
    }

    #[test]
    fn rejects_malformed_requests_with_an_error_reply() {
        let s = services();
        for msg in [
            EnclaveMessage::Egetkey {
                keyrequest: vec![0; 511],
            },
            EnclaveMessage::Ereport {
                targetinfo: vec![0; 512],
                reportdata: vec![0; 63],
            },
            EnclaveMessage::Ereport {
                targetinfo: vec![0; 513],
                reportdata: vec![0; 64],
            },
            EnclaveMessage::QeTargetinfo,
            EnclaveMessage::Quote { report: vec![] },
        ] {
            assert!(
                matches!(
                    s.handle(&secs(1), msg.clone()),
                    Outcome::Reply(DaemonReply::Error(_))
                ),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn turns_lost_and_failed_reports_into_loss() {
        let s = services();
        assert_eq!(
            s.handle(
                &secs(1),
                EnclaveMessage::Lost {
                    reason: "tracer attached".into()
                }
            ),
            Outcome::Lost {
                code: code::REPORTED,
                reason: "tracer attached".into()
            }
        );
        let Outcome::Lost { reason, .. } = s.handle(
            &secs(1),
            EnclaveMessage::Failed {
                reason: "é".repeat(400),
            },
        ) else {
            panic!()
        };
        assert!(reason.len() <= MAX_REASON && reason.starts_with("the enclave failed: "));
    }
}
