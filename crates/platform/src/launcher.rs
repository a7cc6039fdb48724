//! From an admitted bundle and a reservation to a running, supervised enclave: the enclave's
//! uid, the launch ([`crate::launch`]), the table entry made `Running`, and its supervisor
//! thread. Any failure leaves nothing running; the caller's [`Reservation`] then gives the
//! table slot and the EPC back.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use coffer_boundary::Credentials;
use coffer_proto::client::{CreateOptions, Created, PlatformError};

use crate::admit::Admitted;
use crate::launch::{LaunchSpec, launch};
use crate::shared::Shared;
use crate::supervisor::{Supervised, supervise};
use crate::table::Reservation;

/// The uid and gid enclave `id` runs under: `uid_base + id` when the daemon runs as root,
/// `None` (the daemon's own) otherwise.
fn credentials(shared: &Shared, id: u64) -> Result<Option<Credentials>, PlatformError> {
    if !shared.root {
        return Ok(None);
    }
    u32::try_from(id)
        .ok()
        .and_then(|id| shared.config.uid_base.checked_add(id))
        .filter(|uid| *uid != u32::MAX)
        .map(|uid| Some(Credentials { uid, gid: uid }))
        .ok_or_else(|| {
            PlatformError::LaunchFailed(format!(
                "no uid left for enclave {id} above the uid base {}",
                shared.config.uid_base
            ))
        })
}

/// Starts the reserved enclave and its supervisor. Returns what its host learns and the
/// channel memfd.
pub(crate) fn start(
    shared: &Arc<Shared>,
    reservation: &Reservation<'_>,
    admitted: &Admitted,
    options: CreateOptions,
    owner_uid: u32,
) -> Result<(Created, OwnedFd), PlatformError> {
    let id = reservation.id();
    let b = &admitted.bundle;
    let config = b.config();
    let max_call_size = u32::try_from(config.max_call_size).map_err(|_| {
        PlatformError::BadBundle(format!(
            "max_call_size {} is too large",
            config.max_call_size
        ))
    })?;
    let credentials = credentials(shared, id)?;
    let started = Instant::now();
    let launched = launch(LaunchSpec {
        id,
        image: b.image(),
        identity: &admitted.identity,
        heap_size: config.heap_size,
        stack_size: config.stack_size,
        tcs_count: config.tcs_count,
        debug: b.debug(),
        max_call_size,
        ecall_interface: options.ecall_interface,
        ocall_interface: options.ocall_interface,
        interface_names: options.interface_names,
        switchless_spin_ns: options.switchless_spin_ns,
        credentials,
        keep_ipc_lock: shared.keep_ipc_lock,
        ready_timeout: shared.config.ready_timeout,
    })
    .map_err(|e| {
        tracing::warn!(id, "launch failed: {e}");
        PlatformError::LaunchFailed(e.to_string())
    })?;
    if !launched.secret_memory && !b.debug() {
        tracing::warn!(id, "a production enclave runs without secret memory");
    }

    let live = Arc::new(launched.live);
    let pid = live.child.pid();
    reservation.running(Arc::clone(&live));
    let supervised = Supervised {
        id,
        live: Arc::clone(&live),
        socket: launched.socket,
        identity: admitted.identity.clone(),
        debug: b.debug(),
    };
    let shared_for_thread = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("coffer-enclave-{id}"))
        .spawn(move || supervise(shared_for_thread, supervised));
    if let Err(e) = spawned {
        let _ = live.child.kill();
        let _ = live.child.wait();
        return Err(PlatformError::Internal(format!(
            "cannot start the enclave's supervisor thread: {e}"
        )));
    }
    let epc_bytes = b.epc_size();
    tracing::info!(
        id,
        pid,
        uid = credentials.map(|c| c.uid),
        owner_uid,
        mrenclave = %hex::encode(b.mrenclave()),
        epc_bytes,
        debug = b.debug(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "enclave created"
    );
    Ok((
        Created {
            id,
            pid,
            mrenclave: b.mrenclave(),
            mrsigner: b.mrsigner(),
            debug: b.debug(),
            epc_bytes,
            slot_count: config.tcs_count,
            slot_size: max_call_size,
        },
        launched.channel_fd,
    ))
}
