//! The SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): the platform's FMSPC,
//! PCE-ID and TCB (sixteen CPUSVN components and the PCESVN), which TCB level matching reads.

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::der::parse_der;
use x509_parser::der_parser::oid::Oid;

use crate::error::QuoteVerificationError as E;

/// 1.2.840.113741.1.13.1 (Intel SGX extensions).
const SGX_EXTENSION: &[u64] = &[1, 2, 840, 113741, 1, 13, 1];

/// The fields of the SGX extension Coffer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckExtension {
    /// Platform Provisioning ID (16 bytes).
    pub ppid: Vec<u8>,
    /// The sixteen SGX TCB component SVNs (`1.2.840.113741.1.13.1.2.1` to `.2.16`).
    pub tcb_components: [u8; 16],
    /// PCESVN (`.2.17`).
    pub pcesvn: u16,
    /// CPUSVN (`.2.18`); Intel's certificates carry the components again in it.
    pub cpusvn: [u8; 16],
    /// PCE-ID (`.3`, 2 bytes).
    pub pce_id: [u8; 2],
    /// FMSPC (`.4`, 6 bytes): the platform family TCB Info is issued for.
    pub fmspc: [u8; 6],
}

fn bad(reason: impl Into<String>) -> E {
    E::PckExtension {
        reason: reason.into(),
    }
}

fn sgx_oid(tail: &[u64]) -> Result<Oid<'static>, E> {
    let arcs: Vec<u64> = SGX_EXTENSION.iter().chain(tail).copied().collect();
    Oid::from(&arcs).map_err(|_| bad(format!("cannot encode the OID {arcs:?}")))
}

/// The (OID, value) pairs of a SEQUENCE OF SEQUENCE { OID, value }.
fn entries<'a, 'b>(
    seq: &'b BerObject<'a>,
    what: &str,
) -> Result<Vec<(&'b Oid<'a>, &'b BerObject<'a>)>, E> {
    let items = seq
        .as_sequence()
        .map_err(|_| bad(format!("{what} is not a SEQUENCE")))?;
    items
        .iter()
        .map(|item| match item.as_sequence().map(Vec::as_slice) {
            Ok([oid, value]) => oid
                .as_oid()
                .map(|o| (o, value))
                .map_err(|_| bad(format!("an entry of {what} does not start with an OID"))),
            _ => Err(bad(format!(
                "an entry of {what} is not a SEQUENCE of an OID and a value"
            ))),
        })
        .collect()
}

/// The single value for `oid`, failing if it is missing or repeated.
fn unique<'a, 'b>(
    entries: &[(&'b Oid<'a>, &'b BerObject<'a>)],
    oid: &Oid<'_>,
    name: &str,
) -> Result<&'b BerObject<'a>, E> {
    let mut found = entries.iter().filter(|(o, _)| *o == oid);
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Ok(v),
        (None, _) => Err(bad(format!("{name} ({oid}) is missing"))),
        (Some(_), Some(_)) => Err(bad(format!("{name} ({oid}) appears more than once"))),
    }
}

fn octets<const N: usize>(v: &BerObject<'_>, name: &str) -> Result<[u8; N], E> {
    let s = v
        .as_slice()
        .map_err(|_| bad(format!("{name} is not an OCTET STRING")))?;
    s.try_into()
        .map_err(|_| bad(format!("{name} is {} bytes, not {N}", s.len())))
}

fn integer(v: &BerObject<'_>, name: &str, max: u32) -> Result<u32, E> {
    let n = v
        .as_u32()
        .map_err(|_| bad(format!("{name} is not a non-negative INTEGER")))?;
    if n > max {
        return Err(bad(format!("{name} is {n}, above its maximum {max}")));
    }
    Ok(n)
}

/// Reads the SGX extension of `cert` (a PCK leaf certificate).
pub(crate) fn parse_pck_extension(cert: &X509Certificate<'_>) -> Result<PckExtension, E> {
    let oid = sgx_oid(&[])?;
    let ext = cert
        .get_extension_unique(&oid)
        .map_err(|_| bad("the SGX extension appears more than once"))?
        .ok_or_else(|| bad("the PCK certificate has no SGX extension (1.2.840.113741.1.13.1)"))?;
    let (rest, top) = parse_der(ext.value).map_err(|_| bad("the SGX extension is not DER"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the SGX extension"));
    }
    let top = entries(&top, "the SGX extension")?;
    let ppid = unique(&top, &sgx_oid(&[1])?, "PPID")?
        .as_slice()
        .map_err(|_| bad("PPID is not an OCTET STRING"))?
        .to_vec();
    let tcb = entries(unique(&top, &sgx_oid(&[2])?, "TCB")?, "TCB")?;
    let mut tcb_components = [0u8; 16];
    for (i, c) in (1u64..).zip(tcb_components.iter_mut()) {
        let name = format!("SGX TCB component {i}");
        let v = integer(unique(&tcb, &sgx_oid(&[2, i])?, &name)?, &name, 255)?;
        *c = u8::try_from(v).map_err(|_| bad(format!("{name} is out of range")))?;
    }
    let pcesvn = integer(
        unique(&tcb, &sgx_oid(&[2, 17])?, "PCESVN")?,
        "PCESVN",
        65535,
    )?;
    let pcesvn = u16::try_from(pcesvn).map_err(|_| bad("PCESVN is out of range"))?;
    let cpusvn = octets::<16>(unique(&tcb, &sgx_oid(&[2, 18])?, "CPUSVN")?, "CPUSVN")?;
    let pce_id = octets::<2>(unique(&top, &sgx_oid(&[3])?, "PCE-ID")?, "PCE-ID")?;
    let fmspc = octets::<6>(unique(&top, &sgx_oid(&[4])?, "FMSPC")?, "FMSPC")?;
    if cpusvn != tcb_components {
        return Err(bad(format!(
            "CPUSVN {} disagrees with the TCB components {}",
            hex::encode(cpusvn),
            hex::encode(tcb_components)
        )));
    }
    Ok(PckExtension {
        ppid,
        tcb_components,
        pcesvn,
        cpusvn,
        pce_id,
        fmspc,
    })
}

/// What a quote's PCK leaf certificate says, **unverified**: enough to fetch the collateral for
/// the platform (FMSPC, and which PCK CA's CRL: `processor` or `platform`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedPckInfo {
    pub extension: PckExtension,
    /// The leaf's issuer, e.g. "CN=Intel SGX PCK Processor CA, ...".
    pub issuer: String,
    /// `"processor"`, `"platform"` (the `ca` parameter of Intel's `pckcrl` endpoint), or
    /// `"unknown"` when the issuer's name says neither.
    pub ca: &'static str,
}

/// Reads the PCK leaf certificate of `quote`'s chain (type 5) without verifying anything.
pub fn unverified_pck_info(quote: &coffer_abi::quote::Quote) -> Result<UnverifiedPckInfo, E> {
    let pem = quote
        .pck_certificate_chain_pem()
        .ok_or_else(|| E::NoPckCertificateChain(quote.certification_data().cert_type()))?;
    let stored = crate::chain::pem_chain_to_der(pem)?;
    let path = crate::chain::order_path(&stored)?;
    let (_, leaf) = path
        .certs
        .first()
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    let issuer = leaf.issuer().to_string();
    let ca = if issuer.contains("PCK Processor CA") {
        "processor"
    } else if issuer.contains("PCK Platform CA") {
        "platform"
    } else {
        "unknown"
    };
    Ok(UnverifiedPckInfo {
        extension: parse_pck_extension(leaf)?,
        issuer,
        ca,
    })
}
