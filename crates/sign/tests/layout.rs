//! The enclave layout: determinism, what MRENCLAVE binds, and refusals.

mod support;

use coffer_abi::sgxs::{SgxsWriter, measure_sgxs};
use coffer_sign::layout::{self, LayoutError, plan};
use coffer_sign::{EnclaveConfig, measure_enclave};
use sha2::{Digest, Sha256};
use support::elf::{self, Phdr};

fn config() -> EnclaveConfig {
    EnclaveConfig::from_toml(
        "isv_prod_id = 1\nisv_svn = 2\nheap_size = 0x20000\nstack_size = 0x8000\n\
         tcs_count = 2\ndebug = false\n",
    )
    .unwrap()
}

fn image() -> Vec<u8> {
    let code: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    elf::static_elf(&code, b"initial data", 0x3000)
}

#[test]
fn accepts_a_static_elf_and_measures_it_deterministically() {
    let img = image();
    let a = measure_enclave(&img, &config()).unwrap();
    let b = measure_enclave(&img.clone(), &config()).unwrap();
    assert_eq!(a, b);
    // headers page, 3 code pages, data + bss pages (1 + 3 = 4096 + 0x3000 + 12 bytes → 4 pages),
    // heap 32 pages, 2 × (8 stack + TCS + SSA).
    let l = plan(&img, &config()).unwrap();
    assert_eq!(l.image_pages, 1 + 3 + 4);
    assert_eq!(a.epc_size, (8 + 32 + 2 * 10) * 4096);
    assert_eq!(l.threads.len(), 2);
    assert!(l.enclave_size.is_power_of_two());
    assert!(l.enclave_size >= l.threads[1].ssa + 4096);
}

#[test]
fn mrenclave_binds_code_data_and_configuration() {
    let img = image();
    let base = measure_enclave(&img, &config()).unwrap().mrenclave;
    let mut code = img.clone();
    code[0x1000 + 5] ^= 1;
    assert_ne!(measure_enclave(&code, &config()).unwrap().mrenclave, base);
    let mut c = config();
    c.heap_size += 4096;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    let mut c = config();
    c.stack_size += 4096;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    let mut c = config();
    c.tcs_count = 3;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    // Not measured: identity, debug, the call buffer size.
    let mut c = config();
    c.isv_svn = 9;
    c.debug = true;
    c.max_call_size = 8192;
    assert_eq!(measure_enclave(&img, &c).unwrap().mrenclave, base);
}

#[test]
fn sgxs_stream_hashes_to_mrenclave() {
    let img = image();
    let mut out = Vec::new();
    let mut w = SgxsWriter::new(&mut out);
    let m = layout::measure_enclave_with_sink(&img, &config(), &mut w).unwrap();
    let digest: [u8; 32] = Sha256::digest(&out).into();
    assert_eq!(digest, m.mrenclave);
    assert_eq!(measure_sgxs(&out[..]).unwrap(), m.mrenclave);
}

#[test]
fn accepts_the_system_static_pie() {
    let Ok(img) = std::fs::read("/sbin/ldconfig") else {
        eprintln!("no /sbin/ldconfig here; skipped");
        return;
    };
    let m = measure_enclave(&img, &config()).unwrap();
    assert!(m.epc_size > img.len() as u64 / 2);
}

#[test]
fn rejects_a_dynamically_linked_elf() {
    let Ok(img) = std::fs::read("/bin/ls") else {
        return;
    };
    let e = measure_enclave(&img, &config()).unwrap_err();
    assert!(matches!(e, LayoutError::DynamicallyLinked(_)), "{e}");
    assert!(e.to_string().contains("crt-static"), "{e}");
}
