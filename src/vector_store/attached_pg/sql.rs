//! SQL text for attached tables: quoted names, bound parameters, and the
//! conditions every statement is made of (scope, tags, ids) and the columns
//! it reads. Names (tables, columns) are quoted identifiers; values (tags,
//! ids, scope values, JSON paths) are always bound parameters.

use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Encode, Postgres, Type};
use uuid::Uuid;

use crate::domain::{CollectionSpec, Field, FieldKind, IdKind, Mapping};

/// `"name"`, with `"` doubled: any identifier, as Postgres spells it.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An attached table's name: `table` or `schema.table`. A part is taken as
/// written (no case folding); a part in double quotes (`"a.b"`, with `""`
/// for a quote) may contain dots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// # Errors
    /// A message when `s` is not one or two non-empty parts.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        Some('"') => break,
                        Some(c) => part.push(c),
                        None => return Err(format!("`{s}` has an unterminated quoted name")),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err(format!("`{s}` is not a table name (text after a quoted part)"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    part.push(c);
                    chars.next();
                }
            }
            if part.is_empty() {
                return Err(format!("`{s}` is not a table name ([schema.]table)"));
            }
            parts.push(part);
            if chars.next().is_none() {
                break;
            }
        }
        match <[String; 2]>::try_from(parts) {
            Ok([schema, name]) => Ok(Self { schema: Some(schema), name }),
            Err(parts) if parts.len() == 1 => {
                Ok(Self { schema: None, name: parts.into_iter().next().unwrap_or_default() })
            }
            Err(_) => Err(format!("`{s}` is not a table name ([schema.]table)")),
        }
    }

    /// The quoted, possibly schema-qualified name for SQL and `to_regclass`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(&self.name)),
            None => ident(&self.name),
        }
    }
}

/// Bound parameters of one statement: `bind` returns the placeholder.
#[derive(Default)]
pub(super) struct Binds {
    args: PgArguments,
    count: usize,
    failed: Option<sqlx::error::BoxDynError>,
}

impl Binds {
    pub fn bind<'q, T: Encode<'q, Postgres> + Type<Postgres> + 'q>(&mut self, value: T) -> String {
        if let Err(e) = Arguments::add(&mut self.args, value) {
            self.failed.get_or_insert(e);
        }
        self.count += 1;
        format!("${}", self.count)
    }

    /// The arguments, or the first value that failed to encode.
    pub fn into_args(self) -> Result<PgArguments, sqlx::error::BoxDynError> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.args),
        }
    }
}

/// What a statement on an attached table needs to know: the collection,
/// its mapping (kinds filled in by Attach) and the quoted table name.
pub(super) struct Target<'a> {
    pub spec: &'a CollectionSpec,
    pub mapping: &'a Mapping,
    /// Quoted, possibly schema-qualified.
    pub table: String,
    /// `text[]` or `varchar[]`: what a bound tag array is cast to for a
    /// `TextArray` tag column (`varchar[] && text[]` has no operator).
    pub tag_array_type: &'static str,
    /// How a `json` column is read as jsonb (see [`JsonRead`]).
    pub json: JsonRead,
}

/// How a `json` column is read as jsonb.
///
/// `json` keeps a `\u0000` escape as written, but nothing that reads it can:
/// the cast to jsonb and every json operator (`->`, `#>>`) fail on the whole
/// row ("unsupported Unicode escape sequence"), so one such row anywhere in
/// the table would stop every count, delete and read on it, everyone's
/// erasures included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonRead {
    /// `(col::jsonb)`: what an expression index serves (and a table with
    /// such an index cannot hold a `\u0000` row: its insert would fail).
    Cast,
    /// The cast where the text holds no `\u0000`, else the text with every
    /// `\u0000` escape (not an escaped backslash followed by `u0000`) read as
    /// U+FFFD. No index serves it; used once a statement failed on such a
    /// row (`SQLSTATE 22P05`), and by Attach's checks.
    Tolerant,
}

impl Target<'_> {
    /// `t."column"`.
    pub fn col(&self, column: &str) -> String {
        format!("t.{}", ident(column))
    }

    pub fn id(&self) -> String {
        self.col(&self.mapping.id_column)
    }

    /// The SQL type of native ids as bound (`= ANY($n::uuid[])`).
    pub fn id_type(&self) -> &'static str {
        match self.mapping.id_kind {
            IdKind::Uuid => "uuid",
            IdKind::Int => "bigint",
            IdKind::Text => "text",
        }
    }

    /// The condition every point of the collection meets (`TRUE` unscoped).
    ///
    /// # Errors
    /// A message when the scope's value does not fit its column.
    pub fn scope(&self, b: &mut Binds) -> Result<String, String> {
        let Some(scope) = &self.mapping.scope else { return Ok("TRUE".into()) };
        let col = self.col(&scope.field.column);
        let value = scope.value.as_str();
        // LangChain's collection by its name: whatever uuid it has now (none
        // when it was deleted: the scope then holds nothing).
        if let (Some(name), FieldKind::Uuid) = (&scope.named, scope.field.kind) {
            // In the schema of the embeddings table (`spec.backend_name`, as attached).
            let schema = TableName::parse(&self.spec.backend_name).ok().and_then(|t| t.schema);
            let collections = TableName { schema, name: "langchain_pg_collection".into() }.quoted();
            return Ok(format!("{col} IN (SELECT \"uuid\" FROM {collections} WHERE name = {})", b.bind(name.clone())));
        }
        Ok(match scope.field.kind {
            FieldKind::Uuid => {
                let u = Uuid::parse_str(value).map_err(|_| format!("`{value}` is not a UUID"))?;
                format!("{col} = {}", b.bind(u))
            }
            FieldKind::Int => {
                let n: i64 = value.parse().map_err(|_| format!("`{value}` is not an integer"))?;
                format!("{col} = {}", b.bind(n))
            }
            FieldKind::Text => format!("{col} = {}", b.bind(value.to_owned())),
            FieldKind::Jsonb | FieldKind::Json => {
                let patterns = scalar_patterns(&scope.field.path, value);
                format!("{} @> ANY({}::jsonb[])", self.as_jsonb(&col, scope.field.kind), b.bind(patterns))
            }
            other => return Err(format!("a scope cannot be a {other:?} field")),
        })
    }

    /// Points carrying any of `tags` (`FALSE` for none). A tag matches a
    /// string equal to it or an array holding it, row by row.
    ///
    /// # Errors
    /// A message when the tag field's kind is not one tags can be.
    pub fn tags(&self, b: &mut Binds, tags: &[String]) -> Result<String, String> {
        if tags.is_empty() {
            return Ok("FALSE".into());
        }
        let field = &self.mapping.tags;
        let col = self.col(&field.column);
        Ok(match field.kind {
            FieldKind::Text => format!("{col} = ANY({}::text[])", b.bind(tags.to_vec())),
            FieldKind::TextArray => format!("{col} && CAST({} AS {})", b.bind(tags.to_vec()), self.tag_array_type),
            FieldKind::Jsonb | FieldKind::Json => {
                // Containment (`@>`) is what a GIN index (jsonb_ops or
                // jsonb_path_ops) serves; ANY of an array runs as one bitmap scan.
                let patterns: Vec<Value> = tags.iter().flat_map(|t| tag_patterns(&field.path, t)).collect();
                format!("{} @> ANY({}::jsonb[])", self.as_jsonb(&col, field.kind), b.bind(patterns))
            }
            other => return Err(format!("tags cannot be read from a {other:?} field")),
        })
    }

    /// An array expression of the native ids of `keys` (keys of other id
    /// kinds are dropped: they name no point here). Text ids whose key is a
    /// hash are found through `attached_point_ids`.
    pub fn id_array(&self, b: &mut Binds, keys: &[Uuid]) -> String {
        match self.mapping.id_kind {
            IdKind::Uuid => format!("{}::uuid[]", b.bind(keys.to_vec())),
            IdKind::Int => {
                let ints: Vec<i64> = keys.iter().filter_map(|k| crate::domain::int_of_key(*k)).collect();
                format!("{}::bigint[]", b.bind(ints))
            }
            IdKind::Text => {
                // Every key's own text (UUID ids, and an id that is itself the
                // text of a version-8 UUID), plus the looked-up ids of hash keys.
                let direct: Vec<String> = keys.iter().map(Uuid::to_string).collect();
                let hashed: Vec<Uuid> = keys.iter().copied().filter(|k| k.get_version_num() == 8).collect();
                if hashed.is_empty() {
                    return format!("{}::text[]", b.bind(direct));
                }
                format!(
                    "ARRAY(SELECT UNNEST({}::text[]) UNION ALL SELECT l.native_id FROM attached_point_ids l \
                     WHERE l.collection_id = {} AND l.point_key = ANY({}::uuid[]))",
                    b.bind(direct),
                    b.bind(self.spec.collection_id),
                    b.bind(hashed)
                )
            }
        }
    }

    /// Points whose id is one of `keys` (`FALSE` for none).
    pub fn ids(&self, b: &mut Binds, keys: &[Uuid]) -> String {
        if keys.is_empty() {
            return "FALSE".into();
        }
        format!("{} = ANY({})", self.id(), self.id_array(b, keys))
    }

    /// The select list rows are decoded from (`rows::decode`).
    ///
    /// # Errors
    /// A message when a field's kind cannot be read as text.
    pub fn columns(&self, b: &mut Binds, with_vector: bool) -> Result<String, String> {
        let m = self.mapping;
        let id = match m.id_kind {
            IdKind::Uuid => self.id(),
            IdKind::Int => format!("{}::bigint", self.id()),
            IdKind::Text => format!("{}::text", self.id()),
        };
        let text = self.text_of(b, m.text.as_ref())?;
        let source = self.text_of(b, m.source.as_ref())?;
        let written = match m.timestamp.as_ref() {
            // Seconds since the epoch: no time zone or format to read back.
            Some(f) if f.kind == FieldKind::Timestamp => format!("extract(epoch from {})::text", self.col(&f.column)),
            other => self.text_of(b, other)?,
        };
        let col = self.col(&m.tags.column);
        let tags = match m.tags.kind {
            FieldKind::Text | FieldKind::TextArray => format!("to_jsonb({col})"),
            FieldKind::Jsonb | FieldKind::Json => {
                format!("({} #> {}::text[])", self.as_jsonb(&col, m.tags.kind), b.bind(m.tags.path.clone()))
            }
            other => return Err(format!("tags cannot be read from a {other:?} field")),
        };
        let vector = if with_vector { format!(", {} AS lethe_vector", self.col(&m.vector)) } else { String::new() };
        Ok(format!(
            "{id} AS lethe_id, {text} AS lethe_text, {source} AS lethe_source, {tags} AS lethe_tags, \
             {written} AS lethe_written{vector}"
        ))
    }

    /// A field's value as text (`NULL::text` without a field).
    fn text_of(&self, b: &mut Binds, field: Option<&Field>) -> Result<String, String> {
        let Some(field) = field else { return Ok("NULL::text".into()) };
        let col = self.col(&field.column);
        Ok(match field.kind {
            FieldKind::Text | FieldKind::Uuid | FieldKind::Int => format!("{col}::text"),
            FieldKind::Jsonb | FieldKind::Json => {
                format!("({} #>> {}::text[])", self.as_jsonb(&col, field.kind), b.bind(field.path.clone()))
            }
            other => return Err(format!("`{}` is a {other:?} field, not text", field.display())),
        })
    }
}

impl Target<'_> {
    /// `col` as jsonb: a json column as [`Self::json`] says.
    pub fn as_jsonb(&self, col: &str, kind: FieldKind) -> String {
        match (kind, self.json) {
            (FieldKind::Json, JsonRead::Cast) => format!("({col}::jsonb)"),
            // The lookbehind and the even run of backslashes before it keep
            // `\\u0000` (a backslash, then the letters) as it is. Escape
            // strings (`E''`, every backslash doubled): their meaning does not
            // depend on the server's `standard_conforming_strings`.
            (FieldKind::Json, JsonRead::Tolerant) => format!(concat!(
                r"(CASE WHEN strpos({col}::text, E'\\u0000') = 0 THEN {col}::jsonb ",
                r"ELSE regexp_replace({col}::text, E'(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', E'\\1\\\\ufffd', 'g')::jsonb END)"
            ), col = col),
            _ => col.to_owned(),
        }
    }
}

/// `value` nested under `path`: `{"a":{"b":value}}`, or `value` itself.
fn nest(path: &[String], value: Value) -> Value {
    path.iter().rev().fold(value, |inner, key| Value::Object([(key.clone(), inner)].into_iter().collect()))
}

/// The JSON values a string stands for: itself, and the integer it spells
/// (a person's id 42 is often stored as a number).
fn scalars(s: &str) -> Vec<Value> {
    let mut out = vec![Value::String(s.to_owned())];
    if let Ok(n) = s.parse::<i64>()
        && n.to_string() == s
    {
        out.push(Value::from(n));
    }
    out
}

/// What a document whose value at `path` is `tag` (a string, an integer, or
/// an array holding either) contains.
pub(super) fn tag_patterns(path: &[String], tag: &str) -> Vec<Value> {
    scalars(tag).into_iter().flat_map(|v| [nest(path, v.clone()), nest(path, Value::Array(vec![v]))]).collect()
}

/// What a document whose value at `path` is `value` (a string or integer) contains.
fn scalar_patterns(path: &[String], value: &str) -> Vec<Value> {
    scalars(value).into_iter().map(|v| nest(path, v)).collect()
}

/// A jsonpath (`$."a"."b"`) for the existence of `path`.
pub(super) fn json_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push('.');
        p.push_str(&Value::String(key.clone()).to_string());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_parse_with_and_without_schema_and_quotes() {
        assert_eq!(TableName::parse("data_docs"), Ok(TableName { schema: None, name: "data_docs".into() }));
        assert_eq!(TableName::parse("rag.Chunks"), Ok(TableName { schema: Some("rag".into()), name: "Chunks".into() }));
        let quoted = TableName::parse(r#""my.schema"."a ""b""""#).unwrap();
        assert_eq!(quoted, TableName { schema: Some("my.schema".into()), name: r#"a "b""#.into() });
        assert_eq!(quoted.quoted(), r#""my.schema"."a ""b""""#);
        for bad in ["", "a.", ".a", "a.b.c", "\"a", "\"a\"b"] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_patterns_match_strings_arrays_and_integers() {
        let path = vec!["metadata".to_owned(), "user_id".to_owned()];
        let p = tag_patterns(&path, "alice");
        assert_eq!(
            p,
            vec![
                serde_json::json!({"metadata": {"user_id": "alice"}}),
                serde_json::json!({"metadata": {"user_id": ["alice"]}}),
            ]
        );
        assert_eq!(tag_patterns(&[], "42").len(), 4);
        assert_eq!(tag_patterns(&[], "042").len(), 2);
    }

    #[test]
    fn json_paths_quote_keys() {
        assert_eq!(json_path(&["a".into(), "x\"y".into()]), r#"$."a"."x\"y""#);
    }
}
