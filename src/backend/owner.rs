//! Who owns a leftover: this process's identity (pid and start time, within one kernel boot
//! and pid namespace), written beside what a run creates, and whether an owner still lives.
//!
//! A pid alone is not enough: pids are reused, so an owner is alive only when a process with
//! that pid exists *and* started at the recorded time. An owner recorded on another boot or in
//! another pid namespace cannot be judged from here and counts as alive: the sweep never
//! removes what it cannot prove abandoned.

use std::path::Path;

/// The identity of one process, as written into owner files and container labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Clock ticks after boot when the process started (`/proc/<pid>/stat`, field 22).
    pub start: u64,
    pub boot: String,
    pub namespace: String,
}

/// Whether the owner of a leftover still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// Another boot or pid namespace: not ours to judge (treated as alive).
    Unknown,
}

impl Owner {
    /// This process, or `None` where `/proc` does not tell (then nothing is ever swept).
    pub fn current() -> Option<Owner> {
        let pid = std::process::id();
        Some(Owner {
            pid,
            start: start_time(pid)?,
            boot: boot_id()?,
            namespace: pid_namespace()?,
        })
    }

    /// One line: `pid=… start=… boot=… ns=…`.
    pub fn render(&self) -> String {
        format!(
            "pid={} start={} boot={} ns={}",
            self.pid, self.start, self.boot, self.namespace
        )
    }

    pub fn parse(text: &str) -> Option<Owner> {
        let mut pid = None;
        let mut start = None;
        let mut boot = None;
        let mut namespace = None;
        for word in text.split_whitespace() {
            let (key, value) = word.split_once('=')?;
            match key {
                "pid" => pid = value.parse().ok(),
                "start" => start = value.parse().ok(),
                "boot" => boot = Some(value.to_owned()),
                "ns" => namespace = Some(value.to_owned()),
                _ => {}
            }
        }
        Some(Owner {
            pid: pid?,
            start: start?,
            boot: boot?,
            namespace: namespace?,
        })
    }

    pub fn liveness(&self) -> Liveness {
        let Some(me) = Owner::current() else {
            return Liveness::Unknown;
        };
        self.liveness_from(&me, start_time(self.pid))
    }

    /// Pure: judged from `me` and the start time of a process with our pid now (if any).
    fn liveness_from(&self, me: &Owner, start_now: Option<u64>) -> Liveness {
        if self.boot != me.boot || self.namespace != me.namespace {
            return Liveness::Unknown;
        }
        match start_now {
            Some(start) if start == self.start => Liveness::Alive,
            _ => Liveness::Gone,
        }
    }
}

/// Writes this process's identity to `path` (best effort: without it a leftover is only
/// swept by the conservative rules for owner-less leftovers).
pub fn write_owner_file(path: &Path) {
    if let Some(me) = Owner::current() {
        let _ = std::fs::write(path, me.render() + "\n");
    }
}

pub fn read_owner_file(path: &Path) -> Option<Owner> {
    Owner::parse(&std::fs::read_to_string(path).ok()?)
}

/// Start time of `pid` in clock ticks after boot; `None` when no such process exists.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at 3 (state); the start time is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The parent pid of `pid`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn boot_id() -> Option<String> {
    Some(
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()?
            .trim()
            .to_owned(),
    )
}

fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_string_lossy();
    // `pid:[4026531836]` → `4026531836`.
    Some(
        text.trim_start_matches("pid:[")
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// Processes whose command line mentions `needle` (never this process).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
            {
                found.push(pid);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32, start: u64) -> Owner {
        Owner {
            pid,
            start,
            boot: "b".into(),
            namespace: "n".into(),
        }
    }

    #[test]
    fn owner_lines_round_trip() {
        let o = owner(42, 123456);
        assert_eq!(Owner::parse(&o.render()), Some(o));
        assert_eq!(Owner::parse("pid=1 start=2"), None);
        assert_eq!(Owner::parse("garbage"), None);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let me = owner(1, 1);
        assert_eq!(
            owner(42, 100).liveness_from(&me, Some(100)),
            Liveness::Alive
        );
        // Same pid, another start time: the pid was reused.
        assert_eq!(owner(42, 100).liveness_from(&me, Some(555)), Liveness::Gone);
        assert_eq!(owner(42, 100).liveness_from(&me, None), Liveness::Gone);
        let elsewhere = Owner {
            boot: "other".into(),
            ..owner(42, 100)
        };
        assert_eq!(elsewhere.liveness_from(&me, None), Liveness::Unknown);
    }

    #[test]
    fn start_time_is_field_22_even_with_spaces_in_the_name() {
        let stat = "77 (a b) c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
    }

    #[test]
    fn this_process_is_alive() {
        let me = Owner::current().expect("/proc");
        assert_eq!(me.liveness(), Liveness::Alive);
        assert_eq!(parent_pid(me.pid).map(|p| p > 0), Some(true));
    }
}
