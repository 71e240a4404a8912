//! Filters: exact keyword matches and disjoint id chunks, so that counts add
//! up and deletes can be chunked.

use super::*;

/// An exact keyword match, never the full-text match `From<String>` may pick.
pub(super) fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_owned()))
}

pub(super) fn has_ids(ids: &[Uuid]) -> Condition {
    Condition::has_id(ids.iter().map(|id| point_id(*id)))
}

/// Disjoint filters whose union is exactly what the selector selects: the
/// first is `tag OR first ids chunk`, the others `ids chunk AND NOT tag`, so
/// counts add up and deletes can be chunked. No tenant condition: the
/// collection is one tenant's (see `Selector`). An empty selector yields no
/// filter at all (selects nothing).
pub(super) fn selector_filters(selector: &Selector) -> Vec<Filter> {
    if selector.is_empty() {
        return Vec::new();
    }
    let ids: Vec<Uuid> = selector.ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let mut chunks = ids.chunks(ID_CHUNK);
    let mut filters = Vec::new();
    match &selector.tag {
        Some(tag) => {
            let mut should = vec![keyword(FIELD_SUBJECTS, tag)];
            if let Some(first) = chunks.next() {
                should.push(has_ids(first));
            }
            filters.push(Filter { should, ..Filter::default() });
            for chunk in chunks {
                filters.push(Filter {
                    must: vec![has_ids(chunk)],
                    must_not: vec![keyword(FIELD_SUBJECTS, tag)],
                    ..Filter::default()
                });
            }
        }
        None => {
            for chunk in chunks {
                filters.push(Filter { must: vec![has_ids(chunk)], ..Filter::default() });
            }
        }
    }
    filters
}

/// The filters with what `keep` selects excluded from each (they stay disjoint).
pub(super) fn keeping(mut filters: Vec<Filter>, keep: &Keep) -> Vec<Filter> {
    if keep.is_empty() {
        return filters;
    }
    for f in &mut filters {
        if !keep.tags.is_empty() {
            let any = MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings { strings: keep.tags.clone() });
            f.must_not.push(Condition::matches(FIELD_SUBJECTS, any));
        }
        if !keep.ids.is_empty() {
            f.must_not.push(has_ids(&keep.ids));
        }
    }
    filters
}
