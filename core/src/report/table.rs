//! Every job of a report, stored run-wide: one list for the names, one
//! for the deps (as job indexes), one for the phase records, instead of
//! a few allocations per job: a job costs its 32-byte entry, its name's
//! bytes, 4 bytes per dep and its records (32 bytes each).
//! [`JobReport`] reads one job out of it.
//!
//! In JSON it is the list of jobs it always was: each job with its name,
//! its deps' names and its phases (see `Report`).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    Failure, InvalidReport, JobRecord, JobReport, PhaseRecord, Status, StopReason, nanos, seconds,
    too_long,
};

/// Every job of a report, in the reference order.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct ReportTable {
    /// Every job's name, one after the other.
    names: String,
    /// One per job.
    entries: Vec<Entry>,
    /// Every job's deps as job indexes, one job's after the other.
    deps: Vec<u32>,
    /// Every job's phase records, one job's after the other.
    phases: Vec<PhaseRecord>,
    /// What only a failed or blocked job has, by job index, in job order.
    rare: Vec<(u32, Rare)>,
    /// Names a report read from JSON gives as deps or blockers but has no
    /// job for; index `i` past the jobs is `outside[i - jobs]`.
    outside: Vec<String>,
    /// Who performed each try (try 1 first), by job index, in job order:
    /// only jobs that a worker elsewhere performed (none in a local run).
    performed_by: Vec<(u32, Box<[Option<String>]>)>,
}

/// The entry of the job at `index` in a side list kept in job order (the
/// few jobs that have one).
fn of_job<T>(list: &[(u32, T)], index: usize) -> Option<&T> {
    let found = list.binary_search_by_key(&index, |&(job, _)| job as usize);
    found.ok().map(|at| &list[at].1)
}

/// One job: where its name, deps and phases end in the table's lists
/// (each starts where the previous job's ends), and its outcome.
#[derive(Clone, PartialEq)]
struct Entry {
    name_end: u32,
    deps_end: u32,
    phases_end: u32,
    tries: u32,
    time_nanos: u64,
    status: Status,
    blocked_reason: Option<StopReason>,
}

/// The parts of a job's outcome most jobs do not have.
#[derive(Clone, PartialEq)]
struct Rare {
    last_error: Option<Failure>,
    blocked_by: Option<u32>,
}

/// A job as it goes into a [`ReportTable`], after the jobs before it.
pub(crate) struct NewJob<'a> {
    pub name: &'a str,
    pub status: Status,
    pub tries: u32,
    pub time: Duration,
    pub last_error: Option<Failure>,
    /// The index of its first dep that did not pass, for a blocked job.
    pub blocked_by: Option<usize>,
    pub blocked_reason: Option<StopReason>,
    /// Who performed each try, try 1 first; empty if no worker elsewhere did.
    pub performed_by: Vec<Option<String>>,
}

/// An index or length in the table's lists, which hold fewer than 2³²
/// items (a report of 2³² phases would take more than 128 GiB).
fn small(n: usize) -> u32 {
    u32::try_from(n).expect("a report's lists hold fewer than 2^32 items")
}

/// The range of item `index` in a list where each ends at `ends[index]`
/// and starts where the previous one ends.
fn range(ends: impl Fn(usize) -> u32, index: usize) -> std::ops::Range<usize> {
    let start = if index == 0 { 0 } else { ends(index - 1) };
    start as usize..ends(index) as usize
}

impl ReportTable {
    /// A table to push `jobs` jobs into; `name_bytes` and `dep_count` are
    /// the lengths of all their names and deps, so each list is allocated
    /// once.
    pub(crate) fn new(jobs: usize, name_bytes: usize, dep_count: usize) -> ReportTable {
        ReportTable {
            names: String::with_capacity(name_bytes),
            entries: Vec::with_capacity(jobs),
            deps: Vec::with_capacity(dep_count),
            phases: Vec::new(),
            rare: Vec::new(),
            outside: Vec::new(),
            performed_by: Vec::new(),
        }
    }

    /// Adds the next job, with its deps' indexes; its phase records come
    /// with [`set_phases`](Self::set_phases).
    pub(crate) fn push(&mut self, job: NewJob<'_>, deps: impl IntoIterator<Item = usize>) {
        let index = small(self.entries.len());
        self.names.push_str(job.name);
        self.deps.extend(deps.into_iter().map(small));
        if job.last_error.is_some() || job.blocked_by.is_some() {
            let rare = Rare {
                last_error: job.last_error,
                blocked_by: job.blocked_by.map(small),
            };
            self.rare.push((index, rare));
        }
        if !job.performed_by.is_empty() {
            let tries = job.performed_by.into_boxed_slice();
            self.performed_by.push((index, tries));
        }
        self.entries.push(Entry {
            name_end: small(self.names.len()),
            deps_end: small(self.deps.len()),
            phases_end: 0,
            tries: job.tries,
            time_nanos: nanos(job.time),
            status: job.status,
            blocked_reason: job.blocked_reason,
        });
    }

    /// Gives the jobs their phase records: every job's, one after the
    /// other, each job's ending at its entry in `ends`.
    pub(crate) fn set_phases(&mut self, phases: Vec<PhaseRecord>, ends: Vec<usize>) {
        assert_eq!(ends.len(), self.entries.len(), "one end per job");
        assert!(ends.last().is_none_or(|&end| end == phases.len()));
        for (entry, end) in self.entries.iter_mut().zip(ends) {
            entry.phases_end = small(end);
        }
        self.phases = phases;
    }

    /// The most tries a job used.
    pub(crate) fn most_tries(&self) -> u32 {
        self.entries
            .iter()
            .map(|entry| entry.tries)
            .max()
            .unwrap_or(0)
    }

    /// How many jobs it holds.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The name of the job at `index`, or of a name outside the jobs.
    pub(super) fn name(&self, index: usize) -> &str {
        match index.checked_sub(self.len()) {
            None => &self.names[range(|i| self.entries[i].name_end, index)],
            Some(outside) => &self.outside[outside],
        }
    }

    pub(super) fn deps(&self, index: usize) -> &[u32] {
        &self.deps[range(|i| self.entries[i].deps_end, index)]
    }

    pub(super) fn phases(&self, index: usize) -> &[PhaseRecord] {
        &self.phases[range(|i| self.entries[i].phases_end, index)]
    }

    pub(super) fn status(&self, index: usize) -> Status {
        self.entries[index].status
    }

    pub(super) fn tries(&self, index: usize) -> u32 {
        self.entries[index].tries
    }

    pub(super) fn time(&self, index: usize) -> Duration {
        Duration::from_nanos(self.entries[index].time_nanos)
    }

    pub(super) fn blocked_reason(&self, index: usize) -> Option<StopReason> {
        self.entries[index].blocked_reason
    }

    pub(super) fn last_error(&self, index: usize) -> Option<&Failure> {
        self.rare(index)?.last_error.as_ref()
    }

    pub(super) fn blocked_by(&self, index: usize) -> Option<u32> {
        self.rare(index)?.blocked_by
    }

    /// Who performed each try of the job at `index`, try 1 first.
    pub(super) fn performed_by(&self, index: usize) -> &[Option<String>] {
        of_job(&self.performed_by, index).map_or(&[], |tries| tries)
    }

    fn rare(&self, index: usize) -> Option<&Rare> {
        of_job(&self.rare, index)
    }

    /// The job at `index`.
    pub(super) fn view(&self, index: usize) -> JobReport<'_> {
        JobReport { table: self, index }
    }

    /// Every job, in order.
    pub(super) fn views(
        &self,
    ) -> impl ExactSizeIterator<Item = JobReport<'_>> + DoubleEndedIterator + Clone {
        (0..self.len()).map(|index| self.view(index))
    }
}

impl std::fmt::Debug for ReportTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.views()).finish()
    }
}

/// A job as JSON has it, borrowed from the table.
#[derive(Serialize)]
struct JobOut<'a> {
    name: &'a str,
    status: Status,
    tries: u32,
    last_error: Option<&'a Failure>,
    blocked_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_reason: Option<StopReason>,
    #[serde(with = "seconds")]
    time_secs: Duration,
    deps: DepNames<'a>,
    phases: &'a [PhaseRecord],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    performed_by: &'a [Option<String>],
}

/// A job's deps, written as their names.
struct DepNames<'a>(JobReport<'a>);

impl Serialize for DepNames<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.deps())
    }
}

impl Serialize for JobReport<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let job = *self;
        JobOut {
            name: job.name(),
            status: job.status(),
            tries: job.tries(),
            last_error: job.last_error(),
            blocked_by: job.blocked_by(),
            blocked_reason: job.blocked_reason(),
            time_secs: job.time(),
            deps: DepNames(job),
            phases: job.phases(),
            performed_by: job.table.performed_by(job.index),
        }
        .serialize(serializer)
    }
}

impl Serialize for ReportTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.views())
    }
}

impl<'de> Deserialize<'de> for ReportTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ReportTable, D::Error> {
        let jobs = Vec::<JobRecord>::deserialize(deserializer)?;
        ReportTable::from_records(jobs).map_err(serde::de::Error::custom)
    }
}

impl ReportTable {
    /// The table of jobs read from JSON or made by hand, whose deps and
    /// blockers are names. A name that is no job's (a hand-written
    /// report's) is kept outside the jobs, so it reads and writes back the
    /// same.
    ///
    /// Refuses two jobs of one name, a time past 584 years, and lists past
    /// 2³² items, so the table holds exactly what it was given.
    pub(super) fn from_records(jobs: Vec<JobRecord>) -> Result<ReportTable, InvalidReport> {
        let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(jobs.len());
        for (index, job) in jobs.iter().enumerate() {
            if let Some(first) = index_of.insert(&job.name, index) {
                return Err(InvalidReport(format!(
                    "jobs {first} and {index} are both named {:?}",
                    job.name
                )));
            }
            if u64::try_from(job.time.as_nanos()).is_err() {
                return Err(InvalidReport(format!(
                    "job {:?}: {}",
                    job.name,
                    too_long(job.time)
                )));
            }
        }
        let mut outside = Vec::new();
        // The index of a job's name, or of a name no job has (added).
        fn find<'a>(
            index_of: &mut HashMap<&'a str, usize>,
            outside: &mut Vec<String>,
            jobs: usize,
            name: &'a str,
        ) -> usize {
            let next = jobs + outside.len();
            let index = *index_of.entry(name).or_insert(next);
            if index == next {
                outside.push(name.to_owned());
            }
            index
        }
        let mut links = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let mut find = |name| find(&mut index_of, &mut outside, jobs.len(), name);
            let deps: Vec<usize> = job.deps.iter().map(|dep| find(dep)).collect();
            links.push((deps, job.blocked_by.as_deref().map(find)));
        }
        let name_bytes: usize = jobs.iter().map(|job| job.name.len()).sum();
        let dep_count: usize = links.iter().map(|(deps, _)| deps.len()).sum();
        let phase_count: usize = jobs.iter().map(|job| job.phases.len()).sum();
        let counts = [
            ("jobs and names", jobs.len() + outside.len()),
            ("bytes of names", name_bytes),
            ("deps", dep_count),
            ("phase records", phase_count),
        ];
        if let Some((what, _)) = counts.iter().find(|(_, n)| u32::try_from(*n).is_err()) {
            return Err(InvalidReport(format!(
                "a report holds fewer than 2^32 {what}"
            )));
        }
        let mut table = ReportTable::new(jobs.len(), name_bytes, dep_count);
        let mut phases = Vec::with_capacity(jobs.iter().map(|job| job.phases.len()).sum());
        let mut ends = Vec::with_capacity(jobs.len());
        for (mut job, (deps, blocked_by)) in jobs.into_iter().zip(links) {
            phases.append(&mut job.phases);
            ends.push(phases.len());
            let new = NewJob {
                name: &job.name,
                status: job.status,
                tries: job.tries,
                time: job.time,
                last_error: job.last_error,
                blocked_by,
                blocked_reason: job.blocked_reason,
                performed_by: job.performed_by,
            };
            table.push(new, deps);
        }
        table.set_phases(phases, ends);
        table.outside = outside;
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use crate::report::Report;

    /// A large report keeps one entry per job.
    #[test]
    fn an_entry_is_small() {
        assert!(size_of::<super::Entry>() <= 32);
    }

    /// The JSON a report was written as before it was stored run-wide
    /// reads, and writes back the same, a dep no job has included.
    #[test]
    fn a_reports_json_reads_and_writes_back_the_same() {
        let json = r#"{"version":2,"no_act":false,"rounds":2,"elapsed_secs":1.5,"cleanup_failure":null,"jobs":[{"name":"Remote","status":"failed","tries":2,"last_error":{"message":"dead","causes":["batteries"]},"blocked_by":null,"time_secs":0.25,"deps":[],"phases":[{"phase":"check","attempt":1,"start_secs":0.0,"end_secs":0.25,"passed":false,"performed":true,"error":{"message":"dead"}}]},{"name":"TV","status":"blocked","tries":0,"last_error":null,"blocked_by":"Remote","time_secs":0.0,"deps":["Remote","Power"],"phases":[]},{"name":"Late","status":"blocked","tries":0,"last_error":null,"blocked_by":null,"blocked_reason":"cancelled","time_secs":0.0,"deps":[],"phases":[]}]}"#;
        let report: Report = serde_json::from_str(json).unwrap();
        let tv = report.job("TV").unwrap();
        assert_eq!(tv.deps().collect::<Vec<_>>(), ["Remote", "Power"]);
        assert_eq!(tv.blocked_by(), Some("Remote"));
        let remote = report.job_at(0).unwrap();
        assert_eq!(remote.last_error().unwrap().causes, ["batteries"]);
        assert_eq!(remote.phases()[0].error.as_deref().unwrap().message, "dead");
        assert_eq!(report.jobs().len(), 3);
        assert!(report.job("Power").is_none());
        assert_eq!(serde_json::to_string(&report).unwrap(), json);
        let again: Report = serde_json::from_str(json).unwrap();
        assert_eq!(again, report);
        // A job is written in two places, as a view (`JobOut`) and as a
        // record (its derive): they must write the same.
        let views: Vec<_> = report.jobs().collect();
        let records: Vec<_> = report.jobs().map(|job| job.to_record()).collect();
        assert_eq!(
            serde_json::to_string(&views).unwrap(),
            serde_json::to_string(&records).unwrap()
        );
    }

    /// A report of jobs `jobs` (JSON), with nothing else run-wide.
    fn report_of(jobs: &str) -> String {
        format!(
            r#"{{"version":2,"no_act":false,"rounds":0,"elapsed_secs":0.0,"cleanup_failure":null,"jobs":[{jobs}]}}"#
        )
    }

    fn job(name: &str, time: &str, blocked_by: &str) -> String {
        format!(
            r#"{{"name":"{name}","status":"blocked","tries":0,"last_error":null,"blocked_by":{blocked_by},"time_secs":{time},"deps":[],"phases":[]}}"#
        )
    }

    /// An empty report, and one blocked by a name no job has, write back
    /// as they were read.
    #[test]
    fn edge_reports_write_back_the_same() {
        for json in [report_of(""), report_of(&job("TV", "0.0", r#""Remote""#))] {
            let report: Report = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&report).unwrap(), json);
        }
    }

    /// What a report cannot hold is refused with the name at fault, not
    /// stored as something else.
    #[test]
    fn a_report_of_two_jobs_of_one_name_or_of_too_long_a_time_is_refused() {
        let read = |json: &str| {
            serde_json::from_str::<Report>(json)
                .unwrap_err()
                .to_string()
        };
        let twice = [job("TV", "0.0", "null"), job("TV", "0.0", "null")].join(",");
        assert!(read(&report_of(&twice)).starts_with(r#"jobs 0 and 1 are both named "TV""#));
        let long = report_of(&job("TV", "1e11", "null"));
        assert!(
            read(&long).starts_with(
                r#"job "TV": a time of 100000000000 s is past the 584 years a report holds"#
            ),
            "{}",
            read(&long)
        );
        let phase = r#"{"phase":"check","attempt":1,"start_secs":0.0,"end_secs":1e11,"passed":true,"performed":true}"#;
        let long_phase =
            job("TV", "0.0", "null").replace(r#""phases":[]"#, &format!(r#""phases":[{phase}]"#));
        assert!(
            read(&report_of(&long_phase))
                .starts_with("a time of 100000000000 s is past the 584 years a report holds"),
            "{}",
            read(&report_of(&long_phase))
        );
    }
}
