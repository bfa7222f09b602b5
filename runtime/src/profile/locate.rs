//! Where a key or a list entry is in a profile's TOML text, as line and column, so
//! `profile lint` can point at it like a compiler does.

use toml_edit::{ImDocument, Item, Value};

/// 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A parsed copy of a profile's text that answers "where is this key".
pub struct Locator {
    text: String,
    doc: Option<ImDocument<String>>,
}

impl Locator {
    pub fn new(text: &str) -> Self {
        Locator {
            text: text.to_owned(),
            doc: ImDocument::parse(text.to_owned()).ok(),
        }
    }

    /// The position of byte `offset`.
    pub fn position(&self, offset: usize) -> Position {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// Where `key` (dotted: `capabilities.allowed`, `seccomp.deny.bpf.reason`) is, at
    /// the list entry equal to `value` when given. A segment after a list picks the
    /// entry that has it as a string field (`deny.bpf` is the entry named `bpf`).
    /// Falls back to the innermost part of the key that exists.
    pub fn find(&self, key: &str, value: Option<&str>) -> Option<Position> {
        let doc = self.doc.as_ref()?;
        let mut best = None;
        let mut cur = Node::Item(doc.as_item());
        for seg in key.split('.') {
            let Some(next) = cur.child(seg) else { break };
            cur = next;
            best = cur.span().or(best);
        }
        if let Some(v) = value {
            if let Some(entry) = cur.entry_with(v) {
                best = entry.span().or(best);
            }
        }
        best.map(|offset| self.position(offset))
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
}

fn holds(v: &Value, s: &str) -> bool {
    match v {
        Value::String(f) => f.value() == s,
        Value::InlineTable(t) => t.iter().any(|(_, v)| v.as_str() == Some(s)),
        _ => false,
    }
}

impl<'a> Node<'a> {
    fn child(self, seg: &str) -> Option<Node<'a>> {
        match self {
            Node::Item(Item::Table(t)) => t.get(seg).map(Node::Item),
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::InlineTable(t) => t.get(seg).map(Node::Value),
                Value::Array(_) => self.entry_with(seg),
                _ => None,
            },
            _ => None,
        }
    }

    fn entry_with(self, s: &str) -> Option<Node<'a>> {
        match self {
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                a.iter().find(|v| holds(v, s)).map(Node::Value)
            }
            _ => None,
        }
    }

    fn span(self) -> Option<usize> {
        match self {
            Node::Item(i) => i.span().map(|r| r.start),
            Node::Value(v) => v.span().map(|r| r.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "schema = 1\n[seccomp]\ndeny = [\n  { name = \"bpf\", reason = \"r\" },\n  { name = \"mount\", reason = \"\" },\n]\n[capabilities]\nallowed = [\"CAP_A\", \"NET_RAW\"]\n";

    #[test]
    fn finds_keys_and_list_entries() {
        let l = Locator::new(TEXT);
        let at = |line, column| Some(Position { line, column });
        assert_eq!(l.find("schema", None), at(1, 10));
        assert_eq!(l.find("capabilities.allowed", Some("NET_RAW")), at(8, 21));
        assert_eq!(l.find("seccomp.deny", Some("mount")), at(5, 3));
        assert_eq!(l.find("seccomp.deny.mount.reason", None), at(5, 30));
        // Falls back to the part that exists.
        assert_eq!(l.find("capabilities.allowed", Some("nope")), at(8, 11));
    }
}
