//! Numbers that never go back, even when the clock does (docs/design/003).
//!
//! A rendition's first media sequence number and part sequence number come from the wall
//! clock ([`weir_packager::wall_clock_start`]). A host whose clock stepped back across a
//! restart would hand out names it already served, and segments are served `immutable`: a
//! CDN would answer the new names with the old media. So, with `server.state_dir` set, each
//! rendition keeps a *reservation* in a small file, `<state_dir>/numbering/<stream>.<rendition>.json`:
//! numbers below it may have been served by this or an earlier run. A packager starts at
//! `max(clock, reservation)`.
//!
//! The reservation runs ahead of what is served ([`RESERVE_SEGMENTS`] segments, and parts
//! for as many), so the file is written once per that many segments, not once per part; a
//! number reaches a viewer only once a reservation above it is on disk (written to a
//! temporary file, fsynced, renamed over the old one, the directory fsynced), so a crash at
//! any point cannot reuse a name. A restart wastes at most one reservation's worth of
//! numbers.
//!
//! Stream and rendition names are checked (`[A-Za-z0-9_-]{1,64}`) before they name a file,
//! and the directory holds at most [`MAX_FILES`] state files: beyond that the least recently
//! written one goes (its stream keeps the clock's guarantee). A state file that cannot be
//! read or parsed is logged and replaced; numbering then follows the clock. A state
//! directory that cannot be written is an error at startup.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::valid_stream_name;

/// How many segments (and parts for as many) one write reserves ahead of what is served.
pub const RESERVE_SEGMENTS: u64 = 16;

/// At most this many state files; beyond it the least recently written is removed.
pub const MAX_FILES: usize = 4096;

/// A state file is a few dozen bytes; anything larger is not one of ours.
const MAX_FILE_BYTES: u64 = 4096;

/// The subdirectory of `server.state_dir` with the numbering files.
const SUBDIR: &str = "numbering";

/// The file written (then removed) at startup to check that the directory is writable.
const PROBE: &str = ".probe";

const FORMAT: u32 = 1;

/// What a state file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: u32,
    stream: String,
    rendition: String,
    /// Every media sequence number below this may have been served.
    next_msn: u64,
    /// Every part sequence number below this may have been served.
    next_part: u64,
}

/// The numbering state directory (`<server.state_dir>/numbering`), shared by every stream.
#[derive(Debug)]
pub struct NumberingStore {
    dir: PathBuf,
    /// The state files in `dir` (file names), to bound their number.
    files: Mutex<HashSet<String>>,
    max_files: usize,
    /// Makes temporary file names unique within the process.
    tmp_seq: AtomicU64,
    /// Reservations written, for tests and logs.
    writes: AtomicU64,
}

impl NumberingStore {
    /// Opens (creating it if needed) the numbering directory under `state_dir`, removes
    /// temporary files a crash left behind, and checks that it can be written: an error
    /// here names the path and stops startup.
    pub fn open(state_dir: &Path) -> anyhow::Result<Self> {
        Self::open_with_limit(state_dir, MAX_FILES)
    }

    fn open_with_limit(state_dir: &Path, max_files: usize) -> anyhow::Result<Self> {
        let dir = state_dir.join(SUBDIR);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = HashSet::new();
        let entries =
            fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            } else if name.ends_with(".json") {
                files.insert(name);
            }
        }
        let store = Self {
            dir,
            files: Mutex::new(files),
            max_files: max_files.max(1),
            tmp_seq: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        };
        store
            .write_atomic(PROBE, b"{}")
            .with_context(|| format!("{} is not writable", store.dir.display()))?;
        fs::remove_file(store.dir.join(PROBE))
            .with_context(|| format!("{} is not writable", store.dir.display()))?;
        Ok(store)
    }

    /// The numbering of `stream`'s `rendition`, or `None` (logged) when a name is not one
    /// that may name a file; such a rendition is numbered by the clock alone.
    pub fn rendition(
        self: &Arc<Self>,
        stream: &str,
        rendition: &str,
        settings: &weir_packager::Settings,
    ) -> Option<RenditionNumbering> {
        if !valid_stream_name(stream) || !valid_stream_name(rendition) {
            warn!(
                rendition = %rendition.escape_debug(),
                "a stream or rendition name that cannot name a state file: numbering follows the clock alone"
            );
            return None;
        }
        let parts_per_segment = settings
            .segment_target
            .as_millis()
            .div_ceil(settings.part_target.as_millis().max(1));
        let parts_per_segment = u64::try_from(parts_per_segment)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        Some(RenditionNumbering {
            store: Arc::clone(self),
            // The alphabet has no `.`, so `<stream>.<rendition>` names one pair only.
            file: format!("{stream}.{rendition}.json"),
            stream: stream.to_owned(),
            rendition: rendition.to_owned(),
            margin: (
                RESERVE_SEGMENTS,
                RESERVE_SEGMENTS.saturating_mul(parts_per_segment),
            ),
            reserved: (0, 0),
        })
    }

    /// How many reservations this store has written.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The state file's reservation: `Ok(None)` when there is none.
    fn read(
        &self,
        file: &str,
        stream: &str,
        rendition: &str,
    ) -> Result<Option<(u64, u64)>, String> {
        let f = match File::open(self.path(file)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut bytes = Vec::new();
        f.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
        }
        let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if state.format != FORMAT {
            return Err(format!("unknown format {}", state.format));
        }
        if state.stream != stream || state.rendition != rendition {
            return Err("written for another stream or rendition".to_owned());
        }
        Ok(Some((state.next_msn, state.next_part)))
    }

    /// Replaces `file` with `state` durably, making room for it first if it is new.
    fn write(&self, file: &str, state: &StateFile) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if !files.contains(file) && files.len() >= self.max_files {
            self.evict_oldest(&mut files);
        }
        self.write_atomic(file, &bytes)?;
        files.insert(file.to_owned());
        drop(files);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Temporary file, fsync, rename over `file`, fsync of the directory: after a crash the
    /// file holds either the old content or the new, and the new survives once this returns.
    fn write_atomic(&self, file: &str, bytes: &[u8]) -> std::io::Result<()> {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{file}.{}.{n}.tmp", std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, self.path(file))?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes the least recently written state file.
    fn evict_oldest(&self, files: &mut HashSet<String>) {
        let oldest = files
            .iter()
            .map(|name| {
                let modified = fs::metadata(self.path(name))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (modified, name.clone())
            })
            .min();
        if let Some((_, name)) = oldest {
            match fs::remove_file(self.path(&name)) {
                Ok(()) => info!(
                    file = %name,
                    max = self.max_files,
                    "numbering state directory full: removed the least recently written file"
                ),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => warn!(file = %name, error = %e, "cannot remove a numbering state file"),
            }
            files.remove(&name);
        }
    }
}

/// One rendition's reservation: [`start`](Self::start) picks the first numbers,
/// [`cover`](Self::cover) keeps the file ahead of every number served.
#[derive(Debug)]
pub struct RenditionNumbering {
    store: Arc<NumberingStore>,
    file: String,
    stream: String,
    rendition: String,
    /// (segments, parts) reserved ahead by one write.
    margin: (u64, u64),
    /// (msn, part): numbers below these are covered by the file (or were meant to be, when
    /// a write failed; it is retried one margin later).
    reserved: (u64, u64),
}

impl RenditionNumbering {
    /// The first (msn, part sequence) for a packager starting now, where `clock` is
    /// [`weir_packager::wall_clock_start`]'s: never below what an earlier run of this
    /// rendition reserved. Reserves ahead of them before returning.
    pub fn start(&mut self, clock: (u64, u64)) -> (u64, u64) {
        let path = self.store.path(&self.file);
        let floor = match off_the_runtime(|| {
            self.store.read(&self.file, &self.stream, &self.rendition)
        }) {
            Ok(floor) => floor,
            Err(e) => {
                warn!(
                    path = %path.display(),
                    error = %e,
                    "unreadable numbering state file: numbering follows the clock, and the file is replaced"
                );
                None
            }
        };
        let first = match floor {
            Some((msn, part)) => (clock.0.max(msn), clock.1.max(part)),
            None => clock,
        };
        if first != clock {
            info!(
                clock_msn = clock.0,
                clock_part = clock.1,
                first_msn = first.0,
                first_part = first.1,
                "the clock is behind this rendition's reserved numbers: numbering continues above them"
            );
        }
        self.reserved = first;
        self.cover(first);
        first
    }

    /// Call before `(msn, part)` (and every number below) can reach a viewer: writes a new
    /// reservation when they are not below the current one.
    pub fn cover(&mut self, used: (u64, u64)) {
        if used.0 < self.reserved.0 && used.1 < self.reserved.1 {
            return;
        }
        let next = (
            used.0
                .saturating_add(1)
                .saturating_add(self.margin.0)
                .max(self.reserved.0),
            used.1
                .saturating_add(1)
                .saturating_add(self.margin.1)
                .max(self.reserved.1),
        );
        let state = StateFile {
            format: FORMAT,
            stream: self.stream.clone(),
            rendition: self.rendition.clone(),
            next_msn: next.0,
            next_part: next.1,
        };
        if let Err(e) = off_the_runtime(|| self.store.write(&self.file, &state)) {
            // The stream goes on (the clock still holds unless it steps back); retried one
            // margin later, not on every part.
            warn!(
                path = %self.store.path(&self.file).display(),
                error = %e,
                "cannot write the numbering state file"
            );
        }
        self.reserved = next;
    }
}

/// The store, as the stream stage asks for reservations.
#[derive(Debug)]
pub struct StoreReservations(pub Arc<NumberingStore>);

impl weir_stream::Reservations for StoreReservations {
    fn rendition(
        &self,
        stream: &str,
        rendition: &str,
        settings: &weir_packager::Settings,
    ) -> Option<Box<dyn weir_stream::Reservation>> {
        self.0
            .rendition(stream, rendition, settings)
            .map(|r| Box::new(r) as Box<dyn weir_stream::Reservation>)
    }
}

impl weir_stream::Reservation for RenditionNumbering {
    fn start(&mut self, clock: (u64, u64)) -> (u64, u64) {
        RenditionNumbering::start(self, clock)
    }

    fn cover(&mut self, used: (u64, u64)) {
        RenditionNumbering::cover(self, used);
    }
}

/// Runs `f` (file IO with fsync: about 10 ms on a VM's ext4) so that it does not hold up
/// the other tasks of a tokio worker thread: the caller waits, they move to another worker.
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        // Not on a runtime (tests), or on one that cannot hand its tasks over.
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "weir-state-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn settings() -> weir_packager::Settings {
        weir_packager::Settings {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(30),
        }
    }

    fn numbering(dir: &Path, stream: &str) -> (Arc<NumberingStore>, RenditionNumbering) {
        let store = Arc::new(NumberingStore::open(dir).unwrap());
        let n = store.rendition(stream, "src", &settings()).unwrap();
        (store, n)
    }

    /// Serves `segments` segments of 4 parts (5 with a short one now and then) from
    /// `first`, covering each number before it is "served"; returns the highest served.
    fn serve(n: &mut RenditionNumbering, first: (u64, u64), segments: u64) -> (u64, u64) {
        let (mut msn, mut part) = first;
        let mut served = first;
        for s in 0..segments {
            let parts = if s % 7 == 3 { 5 } else { 4 };
            for _ in 0..parts {
                n.cover((msn, part));
                served = (msn, part);
                part += 1;
            }
            msn += 1;
        }
        served
    }

    #[test]
    fn round_trip_starts_above_the_last_run_when_the_clock_steps_back() {
        let dir = TempDir::new();
        // 2026 in half-targets of 2 s and 500 ms.
        let clock = (1_780_000_000, 7_120_000_000);
        let served = {
            let (_, mut n) = numbering(&dir.0, "live1");
            let first = n.start(clock);
            assert_eq!(
                first, clock,
                "an empty state directory numbers from the clock"
            );
            serve(&mut n, first, 50)
        };
        // Restart with the clock an hour back (1800 segments, 7200 parts of 2 s / 500 ms).
        let (_, mut n) = numbering(&dir.0, "live1");
        let first = n.start((clock.0 - 1800, clock.1 - 7200));
        assert!(first.0 > served.0, "msn {} after {}", first.0, served.0);
        assert!(first.1 > served.1, "part {} after {}", first.1, served.1);
        // Another stream has its own file: the clock for it.
        let (_, mut other) = numbering(&dir.0, "live2");
        assert_eq!(other.start((7, 9)), (7, 9));
    }

    #[test]
    fn a_clock_ahead_of_the_reservation_wins() {
        let dir = TempDir::new();
        let (_, mut n) = numbering(&dir.0, "s");
        n.start((100, 400));
        let (_, mut n) = numbering(&dir.0, "s");
        assert_eq!(n.start((1_000_000, 4_000_000)), (1_000_000, 4_000_000));
    }

    #[test]
    fn never_below_whatever_point_the_process_stops_at() {
        // Stop after every possible number of segments: the next run, with a clock far
        // behind, always starts above everything served.
        for stop_after in 0..40 {
            let dir = TempDir::new();
            let (_, mut n) = numbering(&dir.0, "s");
            let first = n.start((10, 40));
            let served = serve(&mut n, first, stop_after);
            drop(n);
            let (_, mut n) = numbering(&dir.0, "s");
            let again = n.start((0, 0));
            assert!(
                again.0 > served.0 && again.1 > served.1,
                "stopped after {stop_after} segments: served {served:?}, restarted at {again:?}"
            );
            // And the restarted run's numbers are themselves covered.
            let served_again = serve(&mut n, again, 3);
            let (_, mut n) = numbering(&dir.0, "s");
            let third = n.start((0, 0));
            assert!(third.0 > served_again.0 && third.1 > served_again.1);
        }
    }

    #[test]
    fn one_write_per_reservation_not_per_part() {
        let dir = TempDir::new();
        let (store, mut n) = numbering(&dir.0, "s");
        let first = n.start((0, 0));
        serve(&mut n, first, 160);
        // 160 segments, 16 reserved per write (parts reserved for 5 per segment): 10 or 11
        // writes with the start's, against 650 parts.
        let writes = store.writes();
        assert!((10..=12).contains(&writes), "{writes} writes");
    }

    #[test]
    fn a_corrupt_file_falls_back_to_the_clock_and_is_replaced() {
        for garbage in [
            &b"{\"format\":1,\"stream\":"[..],
            b"\x00\xff\xfe garbage",
            b"{\"format\":2,\"stream\":\"s\",\"rendition\":\"src\",\"next_msn\":9,\"next_part\":9}",
            b"{\"format\":1,\"stream\":\"t\",\"rendition\":\"src\",\"next_msn\":9,\"next_part\":9}",
            b"{\"format\":1,\"stream\":\"s\",\"rendition\":\"src\",\"next_msn\":-1,\"next_part\":9}",
            &[b' '; 5000][..],
        ] {
            let dir = TempDir::new();
            let (_, mut n) = numbering(&dir.0, "s");
            fs::write(dir.0.join(SUBDIR).join("s.src.json"), garbage).unwrap();
            assert_eq!(n.start((5, 20)), (5, 20));
            // Replaced by a valid reservation above the clock's numbers.
            let (_, mut n) = numbering(&dir.0, "s");
            let again = n.start((0, 0));
            assert!(again.0 > 5 && again.1 > 20, "{again:?}");
        }
    }

    #[test]
    fn a_directory_in_place_of_the_file_is_survived() {
        let dir = TempDir::new();
        let (_, mut n) = numbering(&dir.0, "s");
        fs::create_dir_all(dir.0.join(SUBDIR).join("s.src.json")).unwrap();
        // Unreadable and unwritable: the clock, and no panic.
        assert_eq!(n.start((5, 20)), (5, 20));
        serve(&mut n, (5, 20), 40);
    }

    #[test]
    fn names_outside_the_alphabet_get_no_file() {
        let dir = TempDir::new();
        let store = Arc::new(NumberingStore::open(&dir.0).unwrap());
        for (stream, rendition) in [
            ("..", "src"),
            ("a/b", "src"),
            ("s", "../x"),
            ("s.t", "src"),
            ("", "src"),
            (&"x".repeat(65)[..], "src"),
        ] {
            assert!(store.rendition(stream, rendition, &settings()).is_none());
        }
        assert!(store
            .rendition("S_1-a", "slate-720p", &settings())
            .is_some());
    }

    #[test]
    fn an_unwritable_state_dir_is_an_error_naming_it() {
        let dir = TempDir::new();
        // A regular file where the directory should be (fails even for root).
        let file = dir.0.join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let e = NumberingStore::open(&file).unwrap_err();
        assert!(format!("{e:#}").contains("not-a-dir"), "{e:#}");
    }

    #[test]
    fn the_number_of_files_is_bounded() {
        let dir = TempDir::new();
        let store = Arc::new(NumberingStore::open_with_limit(&dir.0, 3).unwrap());
        for i in 0..6 {
            let mut n = store
                .rendition(&format!("s{i}"), "src", &settings())
                .unwrap();
            n.start((1, 1));
            // Written in this order (set explicitly: a filesystem's clock can be coarse).
            File::options()
                .write(true)
                .open(dir.0.join(SUBDIR).join(format!("s{i}.src.json")))
                .unwrap()
                .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i))
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.0.join(SUBDIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["s3.src.json", "s4.src.json", "s5.src.json"]);
        // A store opened on the full directory counts what is there.
        let store = Arc::new(NumberingStore::open_with_limit(&dir.0, 3).unwrap());
        store
            .rendition("s6", "src", &settings())
            .unwrap()
            .start((1, 1));
        assert_eq!(fs::read_dir(dir.0.join(SUBDIR)).unwrap().count(), 3);
    }

    #[test]
    fn temporary_files_left_by_a_crash_are_removed() {
        let dir = TempDir::new();
        NumberingStore::open(&dir.0).unwrap();
        let tmp = dir.0.join(SUBDIR).join(".s.src.json.1.0.tmp");
        fs::write(&tmp, b"{").unwrap();
        NumberingStore::open(&dir.0).unwrap();
        assert!(!tmp.exists());
    }
}
