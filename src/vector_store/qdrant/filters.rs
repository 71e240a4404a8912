//! Filters: exact keyword matches and disjoint id chunks, so that counts add
//! up and deletes can be chunked.

use super::*;

/// An exact keyword match, never the full-text match `From<String>` may pick.
pub(super) fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_owned()))
}

/// Points whose tags at `field` include any of `tags`: as keywords, and a
/// tag written as a number (`"42"`) also as the integer a pipeline's
/// payload may hold (`{"user_id": 42}`), which a keyword match never sees.
pub(super) fn tags_condition(field: &str, tags: &[String]) -> Condition {
    let keywords = match tags {
        [one] => keyword(field, one),
        _ => Condition::matches(field, MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings { strings: tags.to_vec() })),
    };
    // Lethe's own `subjects` hold strings only (and a keyword index only).
    let integers: Vec<i64> = if field == FIELD_SUBJECTS {
        Vec::new()
    } else {
        tags.iter().filter_map(|t| t.parse::<i64>().ok().filter(|n| n.to_string() == *t)).collect()
    };
    if integers.is_empty() {
        return keywords;
    }
    let integers = Condition::matches(field, MatchValue::Integers(qdrant_client::qdrant::RepeatedIntegers { integers }));
    Filter { should: vec![keywords, integers], ..Filter::default() }.into()
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
    let ids: Vec<PointId> =
        selector.ids.iter().copied().collect::<BTreeSet<_>>().into_iter().map(point_id).collect();
    tag_or_ids_filters(FIELD_SUBJECTS, selector.tag.as_deref(), &ids)
}

/// The disjoint filters of [`selector_filters`] for a tag at payload key
/// `field` and (deduplicated) point ids; none when both are absent.
pub(super) fn tag_or_ids_filters(field: &str, tag: Option<&str>, ids: &[PointId]) -> Vec<Filter> {
    let mut chunks = ids.chunks(ID_CHUNK);
    let mut filters = Vec::new();
    match tag {
        Some(tag) => {
            let tag = [tag.to_owned()];
            let mut should = vec![tags_condition(field, &tag)];
            if let Some(first) = chunks.next() {
                should.push(Condition::has_id(first.to_vec()));
            }
            filters.push(Filter { should, ..Filter::default() });
            for chunk in chunks {
                filters.push(Filter {
                    must: vec![Condition::has_id(chunk.to_vec())],
                    must_not: vec![tags_condition(field, &tag)],
                    ..Filter::default()
                });
            }
        }
        None => {
            for chunk in chunks {
                filters.push(Filter { must: vec![Condition::has_id(chunk.to_vec())], ..Filter::default() });
            }
        }
    }
    filters
}

/// One filter selecting what any of the selectors selects (any of their
/// tags, any of their ids), when their ids fit one id condition
/// (`ID_CHUNK`); None when they do not. `Some(None)`: they select nothing.
pub(super) fn any_selector_filter(selectors: &[Selector]) -> Option<Option<Filter>> {
    let tags: Vec<String> = selectors.iter().filter_map(|s| s.tag.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let ids: Vec<PointId> =
        selectors.iter().flat_map(|s| s.ids.iter().copied()).collect::<BTreeSet<_>>().into_iter().map(point_id).collect();
    if ids.len() > ID_CHUNK {
        return None;
    }
    let mut should = Vec::new();
    if !tags.is_empty() {
        should.push(Condition::matches(FIELD_SUBJECTS, MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings { strings: tags })));
    }
    if !ids.is_empty() {
        should.push(Condition::has_id(ids));
    }
    Some((!should.is_empty()).then(|| Filter { should, ..Filter::default() }))
}

/// The filters with what `keep` selects excluded from each (they stay disjoint).
pub(super) fn keeping(filters: Vec<Filter>, keep: &Keep) -> Vec<Filter> {
    let ids: Vec<PointId> = keep.ids.iter().copied().map(point_id).collect();
    keeping_at(filters, FIELD_SUBJECTS, &keep.tags, &ids)
}

/// [`keeping`] for tags at payload key `field` and point ids.
pub(super) fn keeping_at(mut filters: Vec<Filter>, field: &str, tags: &[String], ids: &[PointId]) -> Vec<Filter> {
    for f in &mut filters {
        if !tags.is_empty() {
            f.must_not.push(tags_condition(field, tags));
        }
        if !ids.is_empty() {
            f.must_not.push(Condition::has_id(ids.to_vec()));
        }
    }
    filters
}
