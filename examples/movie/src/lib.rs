//! The reference "watch a movie" suite, job for job: inviting friends over
//! to watch a movie, broken into small idempotent jobs.
//!
//! Deps are listed in the reference's declaration order, which decides the
//! traversal order, so a run can be compared line by line with the
//! original's.

use std::time::Duration;

use dojobber::{Context, Group, Job, JobKind, JobRef, JobResult, Runner, bail, dep};

/// Everything the jobs read from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovieArgs {
    /// The movie to watch; only three are available.
    pub movie: String,
    /// `charged`, or anything else for dead remote batteries.
    pub battery_state: String,
    /// Whether there is room on the couch.
    pub couch_space: bool,
    /// The try of Popcorn whose recheck passes.
    pub pop_success_try: u32,
    /// The try of PopcornBowl whose recheck passes; `None`: its last try.
    pub bowl_success_try: Option<u32>,
    /// The try of Pizza whose run succeeds.
    pub pizza_success_try: u32,
}

impl Default for MovieArgs {
    /// The reference's defaults: "Noises Off", dead batteries, no couch space.
    fn default() -> Self {
        MovieArgs {
            movie: "Noises Off".into(),
            battery_state: "dead".into(),
            couch_space: false,
            pop_success_try: POPCORN_TRIES,
            bowl_success_try: None,
            pizza_success_try: 3,
        }
    }
}

/// The movies ValidateMovie accepts.
pub const AVAILABLE_MOVIES: [&str; 3] = ["Noises Off", "MST3K", "Babylon 5"];

/// The friends who get an invite, each their own dynamic job.
pub const FRIENDS: [(&str, &str); 2] = [
    ("Wendell Bagg", "bagg@example.com"),
    ("Lawyer Cat", "lawyercat@example.com"),
];

const BOWL_TRIES: u32 = 8;
const POPCORN_TRIES: u32 = BOWL_TRIES - 3;

/// A runner for the suite with the example's defaults: 3 tries, no delay.
pub fn runner(args: MovieArgs) -> Runner<MovieArgs> {
    Runner::new(WatchMovie, args)
        .tries(3)
        .retry_delay(Duration::ZERO)
}

/// Counts one more try in a global counter and returns the new count.
fn count_try(cx: &Context<'_, MovieArgs>, key: &str) -> anyhow::Result<u32> {
    Ok(cx.global().update(
        key,
        || 0u32,
        |n| {
            *n += 1;
            *n
        },
    )?)
}

fn count(cx: &Context<'_, MovieArgs>, key: &str) -> u32 {
    cx.global().get::<u32>(key).unwrap_or(0)
}

/// Dusts the couch; its check passes only after a run in the same try.
pub struct CleanCouch;
impl Job<MovieArgs> for CleanCouch {
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if cx.local().get::<bool>("runran").is_none() {
            bail!("The couch is dusty.");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        cx.local_mut().insert("runran", true);
        Ok(())
    }
    fn cleanup(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        tracing::info!("putting away the feather duster");
        Ok(())
    }
}

/// The remote is always where it should be.
pub struct FindTVRemote;
impl Job<MovieArgs> for FindTVRemote {
    fn check(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        Ok(())
    }
}

/// Run-only: fluffs every time.
pub struct FluffPillows;
impl Job<MovieArgs> for FluffPillows {
    fn kind(&self) -> JobKind {
        JobKind::RunOnly
    }
    fn run(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        tracing::info!("fluffing the pillows");
        Ok(())
    }
}

/// Agrees on a time, kept in global storage for the invites.
pub struct PickTimeAndDate;
impl Job<MovieArgs> for PickTimeAndDate {
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if !cx.global().contains_key("Start-DateTime") {
            bail!("No time picked yet.");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        // One of two fixed dates, chosen from the movie so runs compare.
        let when = if cx.args().movie.len() % 2 == 0 {
            "Friday 20:00"
        } else {
            "Saturday 19:00"
        };
        cx.global().insert("Start-DateTime", when.to_owned());
        Ok(())
    }
}

/// Only a few movies are on the shelf.
pub struct ValidateMovie;
impl Job<MovieArgs> for ValidateMovie {
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        let movie = &cx.args().movie;
        if !AVAILABLE_MOVIES.contains(&movie.as_str()) {
            bail!("{movie} not one of the available movies.");
        }
        Ok(())
    }
}

/// Needs a valid movie.
pub struct InsertDVD;
impl Job<MovieArgs> for InsertDVD {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(ValidateMovie)]
    }
    fn check(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        Ok(())
    }
}

/// Dummy: groups the couch and the pillows.
pub struct PrepareRoom;
impl Job<MovieArgs> for PrepareRoom {
    fn kind(&self) -> JobKind {
        JobKind::Dummy
    }
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(CleanCouch), dep(FluffPillows)]
    }
}

/// Waits for the dishwasher: fails until its run has run enough times.
pub struct PopcornBowl;
impl Job<MovieArgs> for PopcornBowl {
    fn tries(&self) -> Option<u32> {
        Some(BOWL_TRIES)
    }
    fn retry_delay(&self) -> Option<Duration> {
        Some(Duration::from_millis(1))
    }
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        let success_try = cx.args().bowl_success_try.unwrap_or(BOWL_TRIES);
        if count(cx, "bowl_failcount") < success_try {
            bail!("Dishwasher cycle not done yet.");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        count_try(cx, "bowl_failcount")?;
        Ok(())
    }
}

/// Run-only: the delivery arrives on a given try.
pub struct Pizza;
impl Job<MovieArgs> for Pizza {
    fn kind(&self) -> JobKind {
        JobKind::RunOnly
    }
    fn tries(&self) -> Option<u32> {
        Some(3)
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if count_try(cx, "pizza_failcount")? < cx.args().pizza_success_try {
            bail!("Giordano's did not arrive yet.");
        }
        Ok(())
    }
}

/// Needs the bowl; pops until its run has run enough times.
pub struct Popcorn;
impl Job<MovieArgs> for Popcorn {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(PopcornBowl)]
    }
    fn tries(&self) -> Option<u32> {
        Some(POPCORN_TRIES)
    }
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if count(cx, "pop_failcount") < cx.args().pop_success_try {
            bail!("Still popping...");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        count_try(cx, "pop_failcount")?;
        Ok(())
    }
}

/// Dummy: popcorn and pizza.
pub struct Food;
impl Job<MovieArgs> for Food {
    fn kind(&self) -> JobKind {
        JobKind::Dummy
    }
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(Popcorn), dep(Pizza)]
    }
}

/// Needs a prepared room and a free seat.
pub struct SitOnCouch;
impl Job<MovieArgs> for SitOnCouch {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(PrepareRoom)]
    }
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if !cx.args().couch_space {
            bail!("No space on couch.");
        }
        Ok(())
    }
}

/// Dummy: what and when.
pub struct DetermineDetails;
impl Job<MovieArgs> for DetermineDetails {
    fn kind(&self) -> JobKind {
        JobKind::Dummy
    }
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(ValidateMovie), dep(PickTimeAndDate)]
    }
}

/// One invite, built from data at run time: a dynamic job.
pub struct SendInvite {
    /// The friend's name, part of the job's name.
    pub name: String,
    /// Where the invite goes.
    pub email: String,
}

impl SendInvite {
    fn sent_key(&self) -> String {
        format!("invite sent to {}", self.email)
    }
}

impl Job<MovieArgs> for SendInvite {
    fn name(&self) -> String {
        format!("Invite {}", self.name)
    }
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(DetermineDetails)]
    }
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if !cx.global().contains_key(&self.sent_key()) {
            bail!("{} has not been invited yet.", self.name);
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        let when = cx
            .global()
            .get::<String>("Start-DateTime")
            .unwrap_or_else(|| "some time".into());
        let message = format!("Come and watch {} at {when} with me!", cx.args().movie);
        tracing::info!(to = %format!("{} {}", self.name, self.email), "{message}");
        cx.global().insert(self.sent_key(), message);
        Ok(())
    }
}

/// The group of DetermineDetails and one invite per friend: a dummy job
/// whose deps are decided at run time.
pub fn invite_friends() -> Group<MovieArgs> {
    Group::new("InviteFriends")
        .with_dep(dep(DetermineDetails))
        .with_deps(FRIENDS.iter().map(|(name, email)| {
            dep(SendInvite {
                name: (*name).into(),
                email: (*email).into(),
            })
        }))
}

/// Everyone invited is here.
pub struct FriendsArrive;
impl Job<MovieArgs> for FriendsArrive {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(invite_friends())]
    }
    fn check(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        Ok(())
    }
}

/// Needs the remote and charged batteries.
pub struct TurnOnTV;
impl Job<MovieArgs> for TurnOnTV {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(FindTVRemote)]
    }
    fn check(&self, cx: &mut Context<'_, MovieArgs>) -> JobResult {
        if cx.args().battery_state != "charged" {
            bail!("Remote batteries are dead.");
        }
        Ok(())
    }
}

/// Everything must be ready.
pub struct StartMovie;
impl Job<MovieArgs> for StartMovie {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![
            dep(FriendsArrive),
            dep(PrepareRoom),
            dep(TurnOnTV),
            dep(InsertDVD),
            dep(SitOnCouch),
            dep(Food),
        ]
    }
    fn check(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        Ok(())
    }
}

/// The root.
pub struct WatchMovie;
impl Job<MovieArgs> for WatchMovie {
    fn deps(&self, _args: &MovieArgs) -> Vec<JobRef<MovieArgs>> {
        vec![dep(StartMovie)]
    }
    fn check(&self, _cx: &mut Context<'_, MovieArgs>) -> JobResult {
        Ok(())
    }
}
