//! Oracles shared by the fuzz targets. They are written independently of the code
//! under test: a JSON path walker for "every error names a field that is there", and
//! a classic-BPF interpreter plus a reference model of the OCI seccomp semantics
//! Stockade documents (runtime/src/seccomp/mod.rs) for "the compiled filter does what
//! the spec says".

pub mod bpf;
pub mod seccomp_model;

use serde_json::Value;

/// Whether `path`, a field path as the runtime prints it (`linux.uidMappings[0].size`,
/// `.` for the document), names a value that exists in `doc`. Object keys may
/// themselves contain dots (annotation keys), so every split is tried.
pub fn path_exists(doc: &Value, path: &str) -> bool {
    if path == "." || path.is_empty() {
        return true;
    }
    walk(doc, path)
}

fn walk(v: &Value, rest: &str) -> bool {
    if rest.is_empty() {
        return true;
    }
    if let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return false;
        };
        let Ok(i) = after[..close].parse::<usize>() else {
            return false;
        };
        let tail = &after[close + 1..];
        let tail = tail.strip_prefix('.').unwrap_or(tail);
        return match v {
            Value::Array(a) => a.get(i).is_some_and(|e| walk(e, tail)),
            _ => false,
        };
    }
    let Value::Object(map) = v else {
        return false;
    };
    map.iter().any(|(k, child)| {
        rest.strip_prefix(k.as_str()).is_some_and(|tail| {
            if tail.is_empty() {
                true
            } else if let Some(t) = tail.strip_prefix('.') {
                walk(child, t)
            } else if tail.starts_with('[') {
                walk(child, tail)
            } else {
                false
            }
        })
    })
}

/// Assert that a JSON parse error of `data` at `field` names the value at fault: a
/// content error (the document is JSON, its values are wrong) must name a path that
/// exists in the document, or, at the document itself, name the key in the message
/// (`missing field `ociVersion``). A syntax error names where the parser was.
pub fn assert_names_field(data: &[u8], field: &str, source: &serde_json::Error) {
    // A syntax error is located by line and column (and the path so far, if any).
    if source.classify() != serde_json::error::Category::Data {
        return;
    }
    // Deeper than serde_json's recursion limit: no document to walk. With a key twice
    // in one object the walk would see the last value, while the error may be in the
    // first (the runtime refuses duplicate fields, but only once it gets there).
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if serde_json::from_slice::<NoDuplicateKeys>(data).is_err() {
        return;
    }
    assert!(
        !field.contains('?'),
        "the field path {field:?} has an unnamed step: {source}"
    );
    assert!(
        path_exists(&doc, field),
        "the field path {field:?} is not in the document: {source}"
    );
    if field == "." && doc.is_object() {
        assert!(
            source.to_string().contains('`'),
            "an error at the document names no key: {source}"
        );
    }
}

/// Deserializes any JSON document and fails on a key repeated within one object.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_found_with_dotted_keys_and_indices() {
        let doc = json!({"linux": {"uidMappings": [{"size": 1}]}, "annotations": {"a.b": 1}});
        assert!(path_exists(&doc, "linux.uidMappings[0].size"));
        assert!(path_exists(&doc, "linux.uidMappings[0]"));
        assert!(path_exists(&doc, "annotations.a.b"));
        assert!(path_exists(&doc, "."));
        assert!(!path_exists(&doc, "linux.uidMappings[1]"));
        assert!(!path_exists(&doc, "linux.gidMappings"));
        assert!(!path_exists(&doc, "?"));
    }
}
