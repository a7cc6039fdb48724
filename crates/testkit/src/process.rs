//! Child processes for tests that drive real binaries: every wait has a timeout, and a child
//! still running when its [`Spawned`] is dropped (a failed assertion, say) is killed and reaped,
//! so no test hangs and none leaves processes behind.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long to wait for a finished child's last output.
const DRAIN: Duration = Duration::from_secs(5);

/// A running child with its standard input, output and error piped.
#[derive(Debug)]
pub struct Spawned {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

/// How a child ended, and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Asserts that the child exited with `code`; returns its standard output.
    pub fn expect_code(&self, code: i32, what: &str) -> &str {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{what}: expected exit status {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts that the child succeeded; returns its standard output.
    pub fn expect_success(&self, what: &str) -> &str {
        self.expect_code(0, what)
    }
}

impl Spawned {
    /// Starts `cmd` with piped standard streams; `name` appears in failure messages.
    pub fn start(name: &str, cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(lines);
        let stderr = child.stderr.take().map(whole);
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            unreachable!("the standard streams were piped");
        };
        Spawned {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of standard output, without its newline. Fails the test (killing the
    /// child) when none comes within `timeout` or the output ends.
    pub fn line(&mut self, timeout: Duration) -> String {
        match self.stdout.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => {
                let why = match e {
                    RecvTimeoutError::Timeout => format!("no output line within {timeout:?}"),
                    RecvTimeoutError::Disconnected => "its output ended".to_owned(),
                };
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{}: {why}; stderr:\n{}", self.name, self.drain_stderr());
            }
        }
    }

    /// Closes the child's standard input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the child has ended (it is then reaped).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Closes standard input and waits up to `timeout` for the child to end. Fails the test
    /// (killing the child) when it does not.
    pub fn wait(self, timeout: Duration) -> Finished {
        let name = self.name.clone();
        self.try_wait(timeout).unwrap_or_else(|stderr| {
            panic!("{name} still runs after {timeout:?}; killed it. stderr:\n{stderr}")
        })
    }

    /// Like [`Spawned::wait`], but a child that does not end in time is killed and reaped and
    /// its standard error returned as the error, without failing the test (for clean-ups).
    pub fn try_wait(mut self, timeout: Duration) -> Result<Finished, String> {
        self.close_stdin();
        let Some(status) = wait_within(&mut self.child, timeout) else {
            return Err(self.drain_stderr());
        };
        let mut stdout = String::new();
        let deadline = Instant::now() + DRAIN;
        while let Ok(line) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        Ok(Finished {
            status,
            stdout,
            stderr: self.drain_stderr(),
        })
    }

    /// Kills the child now and reaps it; its output so far, when it ends in time.
    pub fn kill(mut self) -> Option<Finished> {
        let _ = self.child.kill();
        self.try_wait(DRAIN).ok()
    }

    fn drain_stderr(&self) -> String {
        self.stderr.recv_timeout(DRAIN).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its end (standard input closed at once), within `timeout`.
pub fn run(name: &str, cmd: &mut Command, timeout: Duration) -> Finished {
    Spawned::start(name, cmd).wait(timeout)
}

/// Like [`run`], but `None` (the child killed) instead of a failure when it takes longer.
pub fn try_run(name: &str, cmd: &mut Command, timeout: Duration) -> Option<Finished> {
    Spawned::start(name, cmd).try_wait(timeout).ok()
}

/// Runs `cmd` with its output going where the test's goes, within `timeout`; kills it and
/// fails the test when it takes longer.
pub fn status_within(name: &str, cmd: &mut Command, timeout: Duration) -> ExitStatus {
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
    wait_within(&mut child, timeout)
        .unwrap_or_else(|| panic!("{name} still runs after {timeout:?}; killed it"))
}

/// Waits up to `timeout` for `child`; kills and reaps it and returns `None` when it does not end.
fn wait_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The lines of `out`, read on a thread of their own.
fn lines(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// All of `out` (lossily as UTF-8), read on a thread of its own, sent when it ends.
fn whole(mut out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Polls `probe` every `interval` until it returns `Ok`, and returns that value; fails the test
/// when `timeout` passes first, naming `what` and showing the last `Err` value.
pub fn wait_until<T, E: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {last:#?}"
            ),
        }
        std::thread::sleep(interval);
    }
}
