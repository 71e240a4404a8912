//! Collection settings erasure needs (optimizers, distance), the names of a
//! collection's generations, and how scores compare under each distance.

use super::*;

pub(super) fn optimizers_for_erasure() -> OptimizersConfigDiff {
    OptimizersConfigDiffBuilder::default()
        .deleted_threshold(0.0)
        .vacuum_min_vector_number(VACUUM_MIN_VECTOR_NUMBER)
        .build()
}

pub(super) fn distance(d: Distance) -> qdrant_client::qdrant::Distance {
    match d {
        Distance::Cosine => qdrant_client::qdrant::Distance::Cosine,
        Distance::Dot => qdrant_client::qdrant::Distance::Dot,
        Distance::Euclid => qdrant_client::qdrant::Distance::Euclid,
    }
}

/// The physical collection `{alias}_{suffix}` (`_g1` at creation, the
/// re-index's suffix for later generations).
pub(super) fn physical_name(alias: &str, suffix: &str) -> String {
    format!("{alias}_{suffix}")
}

/// Whether `name` is `{alias}_{suffix}` with a suffix of letters and digits
/// only. No physical collection of another Lethe alias can look like that:
/// it would need an underscore in the suffix.
pub(super) fn is_physical_of(name: &str, alias: &str) -> bool {
    name.strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Which scores are better: higher for cosine and dot, lower (a distance) for Euclid.
#[derive(Clone, Copy)]
pub(super) enum Better {
    Higher,
    Lower,
}

impl Better {
    pub(super) fn for_distance(d: Distance) -> Self {
        match d {
            Distance::Cosine | Distance::Dot => Self::Higher,
            Distance::Euclid => Self::Lower,
        }
    }

    pub(super) fn is_better(self, a: f32, b: f32) -> bool {
        self.order(a, b) == Ordering::Less
    }

    /// Best first.
    pub(super) fn order(self, a: f32, b: f32) -> Ordering {
        match self {
            Self::Higher => b.total_cmp(&a),
            Self::Lower => a.total_cmp(&b),
        }
    }
}
