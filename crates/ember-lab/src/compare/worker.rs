//! `ember compare SPEC --worker`: any number of processes, on one machine or many sharing the
//! runs folder, cooperate on one experiment. Each repeatedly claims a run that is neither finished
//! nor held by a live worker ([`super::claims`]), trains it (resuming what a dead worker left,
//! exactly as one process resumes), and moves on: trials first; an arm's finals once all its
//! trials are done, with the setting every worker reads from the same finished trials. A worker
//! leaves when nothing of its share is left to train; the one that finishes the experiment's last
//! run writes the report (`--report-only` always can). `--shard I/N` restricts a worker to every
//! N-th run of the plan, on the same claims, so that overlapping or resubmitted shards never train
//! a run twice.

use std::time::Duration;

use anyhow::{bail, Context};

use super::claims::Claims;
use super::run::{chosen_settings, final_state, FinalState};
use super::sweep::{self, TrialOutcome};
use super::{CompareSpec, Experiment, Written};

/// `--shard I/N`: the runs at positions `I − 1`, `I − 1 + N`, … of the experiment's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    /// How many shards the plan is divided into (N, at least 1).
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `1 ≤ I ≤ N` (a Slurm array task id over the array size).
    fn from_str(text: &str) -> Result<Self, String> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((i, n)) if n >= 1 && (1..=n).contains(&i) => Ok(Shard {
                index: i - 1,
                count: n,
            }),
            _ => Err(format!(
                "`{text}` is not a shard I/N with 1 ≤ I ≤ N (e.g. 2/4)"
            )),
        }
    }
}

impl Shard {
    fn holds(self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// How a worker behaves.
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// The share of the plan this worker trains (`--shard I/N`); `None`: any run.
    pub shard: Option<Shard>,
    /// How long a claim lasts without renewal: a crashed worker's runs wait this long.
    pub lease: Duration,
}

/// One run of the plan.
#[derive(Clone, Copy, Debug)]
enum Job {
    Trial { arm: usize, index: usize },
    Final { arm: usize, seed: u64 },
}

/// Every run of the experiment in a fixed order (each arm's trials, then each arm's finals), the
/// same for every worker: shards are positions in it.
fn plan(spec: &CompareSpec) -> Vec<Job> {
    let mut jobs = Vec::new();
    let runnable = || {
        spec.arms
            .iter()
            .enumerate()
            .filter(|(_, a)| a.pending.is_none() && a.choice.is_some())
    };
    if let Some(section) = &spec.sweep {
        for (arm, a) in runnable() {
            let trials = sweep::arm_settings(section, a, arm).len();
            jobs.extend((0..trials).map(|index| Job::Trial { arm, index }));
        }
    }
    for (arm, _) in runnable() {
        jobs.extend(spec.seeds.iter().map(|&seed| Job::Final { arm, seed }));
    }
    jobs
}

/// A marker beside a run's claims: the run failed in some worker and is not retried (its
/// message is reported); delete it to try again.
const FAILED_FILE: &str = "failed.txt";

/// Where a job stands.
enum State {
    Done,
    Failed(String),
    /// Waiting for its arm's trials (finals only).
    Blocked,
    Open,
}

impl Experiment<'_> {
    /// Works on the experiment as one of many workers (see the module's documentation); returns
    /// the report when this worker wrote it.
    pub fn work(&self, options: &WorkerOptions) -> anyhow::Result<Option<Written>> {
        let spec = CompareSpec::load(self.spec_path)?;
        self.refuse_changed(&self.planned_trials(&spec)?)?;
        let claims_dir = self.runs_dir.join(&spec.name).join("claims");
        let worker = Claims::worker_name();
        let claims = Claims::new(&claims_dir, &worker, options.lease);
        let jobs = plan(&spec);
        let poll = (options.lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut trained_any = false;
        tracing::info!(
            "worker {worker}: {} run(s) in the plan{}",
            jobs.len(),
            options
                .shard
                .map(|s| format!(", shard {}/{}", s.index + 1, s.count))
                .unwrap_or_default()
        );
        loop {
            let sweeps = self.sweeps(&spec, false)?;
            let settings = chosen_settings(&spec, sweeps.as_deref());
            self.refuse_changed(&self.planned_finals(&spec, &settings)?)?;
            let mut waiting = false;
            let mut claimed = false;
            for (position, &job) in jobs.iter().enumerate() {
                if options.shard.is_some_and(|s| !s.holds(position)) {
                    continue;
                }
                match self.state(&spec, job, &claims)? {
                    State::Done | State::Failed(_) => continue,
                    State::Blocked => {
                        waiting = true;
                        continue;
                    }
                    State::Open => {}
                }
                let key = self.key(&spec, job);
                let Some(held) = claims.try_claim(&key)? else {
                    // A live worker holds it; it may yet die and need us.
                    waiting = true;
                    continue;
                };
                // It may have finished between the look and the claim.
                if matches!(self.state(&spec, job, &claims)?, State::Open) {
                    tracing::info!("worker {worker}: claimed {key}, training");
                    if let Err(message) = self.train_job(&spec, job, &settings) {
                        tracing::error!("{key}: {message}");
                        let marker = claims.folder(&key).join(FAILED_FILE);
                        ember_train::write_atomically(&marker, format!("{message}\n").as_bytes())
                            .with_context(|| format!("writing {}", marker.display()))?;
                    }
                    trained_any = true;
                }
                held.release()?;
                claimed = true;
                // Trials finishing may unblock finals, and the choice may have changed: look at
                // the plan afresh.
                break;
            }
            if claimed {
                continue;
            }
            if !waiting {
                break;
            }
            std::thread::sleep(poll);
        }
        // Everything of this worker's share is done; if the whole plan is, and this worker
        // trained some of it, it finished last (or with the last) and writes the report.
        let sweeps = self.sweeps(&spec, false)?;
        let mut failures = Vec::new();
        let mut all_done = true;
        for &job in &jobs {
            match self.state(&spec, job, &claims)? {
                State::Done => {}
                State::Failed(message) => {
                    failures.push(format!("{}: {message}", self.key(&spec, job)))
                }
                State::Blocked | State::Open => all_done = false,
            }
        }
        let written = if all_done && trained_any {
            Some(self.write_report(&spec, sweeps.as_deref())?)
        } else {
            None
        };
        if !failures.is_empty() {
            bail!("{} run(s) failed:\n{}", failures.len(), failures.join("\n"));
        }
        Ok(written)
    }

    /// The run's key: its folder under the experiment (`adamw-s0`, `trials/adamw-t3`).
    fn key(&self, spec: &CompareSpec, job: Job) -> String {
        match job {
            Job::Trial { arm, index } => format!("trials/{}-t{index}", spec.arms[arm].name),
            Job::Final { arm, seed } => format!("{}-s{seed}", spec.arms[arm].name),
        }
    }

    fn state(&self, spec: &CompareSpec, job: Job, claims: &Claims) -> anyhow::Result<State> {
        let failed = claims.folder(&self.key(spec, job)).join(FAILED_FILE);
        if let Ok(message) = std::fs::read_to_string(failed) {
            return Ok(State::Failed(message.trim().to_string()));
        }
        Ok(match job {
            Job::Trial { arm, index } => {
                match sweep::trial_outcome(spec, self.runs_dir, &spec.arms[arm], index)? {
                    TrialOutcome::Missing => State::Open,
                    _ => State::Done,
                }
            }
            Job::Final { arm, seed } => {
                let run = spec.run_dir(self.runs_dir, &spec.arms[arm], seed);
                match final_state(spec, &run) {
                    FinalState::Finished => State::Done,
                    FinalState::Longer(_) => State::Open,
                    // The choice is final only once every trial is in: a final trained from
                    // some of them would differ from the single-process run.
                    FinalState::ToTrain if self.trials_done(spec, arm)? => State::Open,
                    FinalState::ToTrain => State::Blocked,
                }
            }
        })
    }

    /// Whether every trial of `arm` finished or diverged (no search: trivially).
    fn trials_done(&self, spec: &CompareSpec, arm: usize) -> anyhow::Result<bool> {
        let Some(section) = &spec.sweep else {
            return Ok(true);
        };
        let a = &spec.arms[arm];
        for index in 0..sweep::arm_settings(section, a, arm).len() {
            if sweep::trial_outcome(spec, self.runs_dir, a, index)? == TrialOutcome::Missing {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn train_job(
        &self,
        spec: &CompareSpec,
        job: Job,
        settings: &[Option<super::sweep::Setting>],
    ) -> Result<(), String> {
        match job {
            Job::Trial { arm, index } => {
                let a = &spec.arms[arm];
                let section = spec.sweep.as_ref().expect("trials come from a sweep");
                let setting = sweep::arm_settings(section, a, arm)
                    .into_iter()
                    .nth(index)
                    .expect("the plan's trial exists");
                sweep::train_trial(spec, self.runs_dir, a, index, &setting)
                    .map_err(|e| format!("{e:#}"))
            }
            Job::Final { arm, seed } => {
                let a = &spec.arms[arm];
                // The trials are done (the state said so) but none finished.
                let Some(setting) = &settings[arm] else {
                    return Err(format!("{}: no trial finished, so no final runs", a.name));
                };
                self.train_final(spec, a, seed, setting)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_one_based_and_checked() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 1, count: 4 }));
        assert_eq!("1/1".parse(), Ok(Shard { index: 0, count: 1 }));
        for bad in ["0/4", "5/4", "1/0", "x", "1/", "/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let s = Shard { index: 1, count: 3 };
        assert_eq!((0..7).filter(|&p| s.holds(p)).collect::<Vec<_>>(), [1, 4]);
    }
}
