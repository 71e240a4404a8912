//! Erase jobs: their status, their stages in order, and residual policies.

use std::str::FromStr;

/// The status of an erase job (the seeds' job states, plus `refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
    Failed,
    Refused,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Refused)
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Self::Queued,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "refused" => Self::Refused,
            other => return Err(format!("unknown job status `{other}`")),
        })
    }
}

/// The stages of an erase job (DESIGN.md "Erase path"), in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Freeze,
    Plan,
    Delete,
    Verify,
    Residual,
    ForgetLineage,
    Physical,
    Log,
    Done,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Self::Freeze,
        Self::Plan,
        Self::Delete,
        Self::Verify,
        Self::Residual,
        Self::ForgetLineage,
        Self::Physical,
        Self::Log,
        Self::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Freeze => "freeze",
            Self::Plan => "plan",
            Self::Delete => "delete",
            Self::Verify => "verify",
            Self::Residual => "residual",
            Self::ForgetLineage => "forget_lineage",
            Self::Physical => "physical",
            Self::Log => "log",
            Self::Done => "done",
        }
    }

    /// The stage after this one; `Done` stays `Done`.
    pub fn next(self) -> Stage {
        let i = Self::ALL.iter().position(|s| *s == self).unwrap_or(Self::ALL.len() - 1);
        Self::ALL[(i + 1).min(Self::ALL.len() - 1)]
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`"))
    }
}

/// What the residual stage does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidualPolicy {
    Report,
    Delete,
    Redact,
}

impl ResidualPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Delete => "delete",
            Self::Redact => "redact",
        }
    }
}

impl FromStr for ResidualPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "report" => Self::Report,
            "delete" => Self::Delete,
            "redact" => Self::Redact,
            other => return Err(format!("unknown residual policy `{other}`")),
        })
    }
}

/// Something a job's certificate must say beyond its counts: what was
/// withheld or capped and why. Never plaintext of the person: counts,
/// identifier kinds and indexes, stage names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobNote {
    /// Stable machine-readable code (`residual_candidates_capped`, `legal_hold`, …).
    pub code: String,
    /// The stage that wrote it.
    pub stage: String,
    pub message: String,
}

impl JobNote {
    pub fn new(code: &str, stage: Stage, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), stage: stage.as_str().to_owned(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_run_in_the_documented_order_and_end_at_done() {
        let mut stage = Stage::Freeze;
        let mut seen = vec![stage];
        while stage != Stage::Done {
            stage = stage.next();
            seen.push(stage);
        }
        assert_eq!(seen, Stage::ALL.to_vec());
        assert_eq!(Stage::Done.next(), Stage::Done);
    }

    #[test]
    fn stage_and_status_names_round_trip() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
        }
        for s in [JobStatus::Queued, JobStatus::InProgress, JobStatus::Completed, JobStatus::Failed, JobStatus::Refused] {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
        }
        assert!(JobStatus::Refused.is_terminal());
        assert!(!JobStatus::InProgress.is_terminal());
    }
}
