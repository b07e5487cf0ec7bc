//! A policy → its canonical TOML text. Written by hand rather than through a serializer so the
//! layout is ours and stable across library versions: top-level keys in a fixed order, then
//! `[settings]` with one quoted setting id per line in sorted order (the map is a `BTreeMap`).

use super::{CodeItem, PolicyCode};
use std::fmt::Write as _;

/// The first lines of every export: comments, so they play no part in parsing.
const HEADER: &str = "# Printfleet policy. Secrets and certificates are references: their values stay on the server.\n# Check with `printfleet policy apply FILE --dry-run`, then apply without --dry-run.\n";

/// A TOML basic string: always double quotes, `"` and `\` escaped, control characters as
/// escapes. Ours rather than the toml crate's, which picks literal or multi-line forms by
/// content and may pick differently in another version — an export must not change by itself.
pub(super) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How one item is written on the right of `=`.
pub(super) fn item_text(item: &CodeItem) -> String {
    match item {
        CodeItem::Bool(b) => b.to_string(),
        CodeItem::Integer(n) => n.to_string(),
        CodeItem::Text(s) => quoted(s),
        CodeItem::Secret => "{ secret = \"set\" }".to_string(),
        CodeItem::Certificate { sha256 } => format!("{{ certificate = \"sha256:{sha256}\" }}"),
    }
}

/// The canonical text of a policy file.
pub fn render(code: &PolicyCode) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "name = {}", quoted(&code.name));
    if let Some(d) = &code.description {
        let _ = writeln!(out, "description = {}", quoted(d));
    }
    let _ = writeln!(out, "mode = {}", quoted(code.mode.as_str()));
    out.push_str("\n[settings]\n");
    for (id, item) in &code.settings {
        let _ = writeln!(out, "{} = {}", quoted(id), item_text(item));
    }
    out
}
