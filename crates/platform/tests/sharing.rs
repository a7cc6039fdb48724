//! Fair sharing of a node (issue 8) on real processes: clients of two different unprivileged
//! uids (helper processes of this test binary that run as those uids) against one daemon with
//! a per-uid EPC quota, a per-uid connection cap, an idle timeout and a socket group. One user
//! must not lock out the rest, and none sees another's enclaves.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_platform::LaunchPolicy;
use coffer_proto::FrameError;
use coffer_proto::client::Response;
use coffer_testkit::process::Spawned;
use coffer_testkit::require_root;
use common::*;

const TIMEOUT: Duration = Duration::from_secs(10);
/// The two users (nobody, and a uid with no account).
const ALICE: u32 = 65534;
const BOB: u32 = 4_100_001;

fn created(resp: Response) -> coffer_proto::client::Created {
    match resp {
        Response::Created(c) => c,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// The small bundle every test creates enclaves from.
fn small() -> coffer_sign::Bundle {
    bundle(&vector_key(), &config(MIB, false), &ready_then_wait())
}

/// A daemon whose directory (socket, bundle) other users may reach, and the small bundle in
/// it: the daemon, the bundle's path, and its EPC size.
fn node(
    configure: impl FnOnce(&mut coffer_platform::PlatformConfig),
) -> (Daemon, std::path::PathBuf, u64) {
    let d = Daemon::start_with(
        "Standard_DC2s_v2",
        LaunchPolicy::default(),
        TIMEOUT,
        configure,
    );
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = small();
    let epc = b.verify().unwrap().epc_size();
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    (d, path, epc)
}

/// This test binary's helper `action`, run as `uid` against the daemon `d`.
fn helper(d: &Daemon, bundle: &Path, uid: u32, gid: u32, action: &str) -> Spawned {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "helper_sharing_client",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("COFFER_TEST_SOCKET", &d.socket)
    .env("COFFER_TEST_BUNDLE", bundle)
    .env("COFFER_TEST_ACTION", action)
    .uid(uid)
    .gid(gid);
    Spawned::start(&format!("helper {action} as uid {uid}"), &mut cmd)
}

/// What follows `key` in the next line the helper prints with it (the test harness prints lines
/// of its own, and its `test NAME ... ` before the helper's first).
fn said(h: &mut Spawned, key: &str) -> String {
    loop {
        let line = h.line(TIMEOUT);
        if let Some((_, rest)) = line.split_once(key) {
            return rest.trim().to_owned();
        }
    }
}

fn wait_stdin() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// The client side of the tests below, run as another uid; does nothing when run directly.
/// Speaks in lines `key: value` on standard output, then holds what it made until its standard
/// input closes.
#[test]
#[ignore = "a helper process of other tests"]
fn helper_sharing_client() {
    let (Ok(socket), Ok(bundle), Ok(action)) = (
        std::env::var("COFFER_TEST_SOCKET"),
        std::env::var("COFFER_TEST_BUNDLE"),
        std::env::var("COFFER_TEST_ACTION"),
    ) else {
        return;
    };
    let socket = Path::new(&socket);
    let bundle = Path::new(&bundle);
    match action.as_str() {
        // Create until refused; report the count and the refusal.
        "fill" => {
            let c = Client::at(socket);
            let mut n = 0;
            let refusal = loop {
                match c.create(bundle).0 {
                    Response::Created(_) => n += 1,
                    Response::Error(e) => break e,
                    other => panic!("{other:?}"),
                }
                assert!(n < 100, "never refused");
            };
            println!("created: {n}");
            println!("refused: {refusal:?}");
            println!("message: {refusal}");
            wait_stdin();
        }
        // Create one enclave and report what the status shows this uid.
        "hold" => {
            let c = Client::at(socket);
            let info = created(c.create(bundle).0);
            println!("created: {}", info.id);
            let s = c.status();
            let owners: Vec<String> = s.enclaves.iter().map(|e| e.owner_uid.to_string()).collect();
            println!("sees: {}", owners.join(","));
            wait_stdin();
        }
        // Open connections until one is refused; report the count and the refusal.
        "connections" => {
            let mut open = Vec::new();
            let refusal = loop {
                let sock = coffer_proto::connect(socket).unwrap();
                // A refused connection has its refusal waiting; an accepted one says nothing
                // until asked, then answers a status.
                let mut poll = [rustix::event::PollFd::new(
                    &sock,
                    rustix::event::PollFlags::IN,
                )];
                let wait = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 300_000_000,
                };
                if rustix::event::poll(&mut poll, Some(&wait)).unwrap() == 0 {
                    coffer_proto::send(sock.as_fd(), &coffer_proto::client::Request::Status, &[])
                        .unwrap();
                }
                match coffer_proto::recv::<Response>(sock.as_fd()).unwrap().0 {
                    Response::Status(_) => open.push(sock),
                    Response::Error(e) => break e,
                    other => panic!("{other:?}"),
                }
                assert!(open.len() < 100, "never refused");
            };
            println!("opened: {}", open.len());
            println!("refused: {refusal:?}");
            wait_stdin();
        }
        // Connect and say nothing; report how long until the daemon closed the connection.
        "idle" => {
            let sock = coffer_proto::connect(socket).unwrap();
            let start = Instant::now();
            match coffer_proto::recv::<Response>(sock.as_fd()) {
                Err(FrameError::Closed) => {
                    println!("closed_after_ms: {}", start.elapsed().as_millis())
                }
                other => panic!("expected the daemon to close the connection, got {other:?}"),
            }
        }
        // Try to connect; report the outcome.
        "connect" => match coffer_proto::connect(socket) {
            Ok(_) => println!("connect: ok"),
            Err(e) => println!("connect: {e}"),
        },
        other => panic!("unknown action {other}"),
    }
}

#[test]
fn an_over_quota_create_is_refused_naming_the_quota_and_other_users_keep_working() {
    if !require_root(
        "an_over_quota_create_is_refused_naming_the_quota_and_other_users_keep_working",
    ) {
        return;
    }
    // Room for two enclaves per uid; the node has room for many more.
    let epc = small().verify().unwrap().epc_size();
    let quota = 2 * epc + epc / 2;
    let (d, bundle, _) = node(|c| c.epc_quota_per_uid = Some(quota));

    let mut alice = helper(&d, &bundle, ALICE, ALICE, "fill");
    assert_eq!(said(&mut alice, "created:"), "2");
    let refusal = said(&mut alice, "refused:");
    assert_eq!(
        refusal,
        format!(
            "EpcQuotaExceeded {{ uid: {ALICE}, quota: {quota}, in_use: {}, requested: {epc} }}",
            2 * epc
        )
    );
    let message = said(&mut alice, "message:");
    assert!(
        message.contains(&format!("quota of {quota} bytes")),
        "{message}"
    );

    // Alice holds her two; Bob still gets his own two, and root is not limited.
    let mut bob = helper(&d, &bundle, BOB, BOB, "fill");
    assert_eq!(said(&mut bob, "created:"), "2");
    let root = Client::connect(&d);
    for _ in 0..3 {
        created(root.create(&bundle).0);
    }
    assert_eq!(root.status().epc_used, 7 * epc);
    alice.wait(TIMEOUT).expect_success("alice");
    bob.wait(TIMEOUT).expect_success("bob");
    root.wait_for("alice's and bob's enclaves to go", |s| {
        s.epc_used == 3 * epc
    });
}

#[test]
fn idle_connections_without_an_enclave_are_closed_and_others_are_kept() {
    if !require_root("idle_connections_without_an_enclave_are_closed_and_others_are_kept") {
        return;
    }
    let idle = Duration::from_secs(1);
    let (d, bundle, _) = node(|c| c.idle_timeout = Some(idle));
    let holder = Client::connect(&d);
    let info = created(holder.create(&bundle).0);

    let mut alice = helper(&d, &bundle, ALICE, ALICE, "idle");
    let ms: u128 = said(&mut alice, "closed_after_ms:").parse().unwrap();
    assert!(
        (900..5000).contains(&ms),
        "closed after {ms} ms for a {idle:?} timeout"
    );
    alice.wait(TIMEOUT).expect_success("alice");

    // The connection that holds an enclave was silent as long, and is still served.
    std::thread::sleep(idle * 2);
    let s = holder.status();
    assert_eq!(s.enclaves.len(), 1);
    assert_eq!(holder.destroy(info.id), Response::Destroyed { id: info.id });
}

#[test]
fn a_user_at_the_connection_cap_is_refused_while_another_connects_and_creates() {
    if !require_root("a_user_at_the_connection_cap_is_refused_while_another_connects_and_creates") {
        return;
    }
    let (d, bundle, _) = node(|c| c.max_connections_per_uid = Some(3));
    let mut alice = helper(&d, &bundle, ALICE, ALICE, "connections");
    assert_eq!(said(&mut alice, "opened:"), "3");
    assert_eq!(
        said(&mut alice, "refused:"),
        format!("TooManyConnections {{ uid: {ALICE}, limit: 3 }}")
    );
    // Alice still holds her three connections: Bob connects and creates.
    let mut bob = helper(&d, &bundle, BOB, BOB, "hold");
    said(&mut bob, "created:");
    bob.wait(TIMEOUT).expect_success("bob");
    alice.wait(TIMEOUT).expect_success("alice");
    // Her connections closed, Alice may connect again.
    let mut again = helper(&d, &bundle, ALICE, ALICE, "hold");
    said(&mut again, "created:");
    again.wait(TIMEOUT).expect_success("alice again");
}

#[test]
fn the_status_shows_a_user_only_its_own_enclaves_and_root_all() {
    if !require_root("the_status_shows_a_user_only_its_own_enclaves_and_root_all") {
        return;
    }
    let (d, bundle, _) = node(|_| {});
    let mut alice = helper(&d, &bundle, ALICE, ALICE, "hold");
    said(&mut alice, "created:");
    assert_eq!(said(&mut alice, "sees:"), ALICE.to_string());
    let mut bob = helper(&d, &bundle, BOB, BOB, "hold");
    said(&mut bob, "created:");
    assert_eq!(
        said(&mut bob, "sees:"),
        BOB.to_string(),
        "bob must not see alice's enclave"
    );
    let mut owners: Vec<u32> = Client::connect(&d)
        .status()
        .enclaves
        .iter()
        .map(|e| e.owner_uid)
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, [ALICE, BOB], "root sees every enclave");
    alice.wait(TIMEOUT).expect_success("alice");
    bob.wait(TIMEOUT).expect_success("bob");
}

#[test]
fn the_socket_belongs_to_its_group_with_mode_0660() {
    if !require_root("the_socket_belongs_to_its_group_with_mode_0660") {
        return;
    }
    const GROUP: u32 = 4_100_100;
    let (d, bundle, _) = node(|c| {
        c.socket_group = Some(GROUP);
        c.socket_mode = 0o660;
    });
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!((meta.gid(), meta.mode() & 0o777), (GROUP, 0o660));
    let mut outsider = helper(&d, &bundle, ALICE, ALICE, "connect");
    assert!(
        said(&mut outsider, "connect:").contains("denied"),
        "a user outside the group connected"
    );
    outsider.wait(TIMEOUT).expect_success("outsider");
    let mut member = helper(&d, &bundle, BOB, GROUP, "connect");
    assert_eq!(said(&mut member, "connect:"), "ok");
    member.wait(TIMEOUT).expect_success("member");
}
