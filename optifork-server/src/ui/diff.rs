//! A line diff of two JSON documents (pretty-printed, keys sorted), for the audit log's
//! before/after view. Unchanged runs longer than a few lines are folded.

use serde_json::Value as Json;

/// One line of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// `add`, `del`, `ctx` (unchanged) or `gap` (folded unchanged lines).
    pub kind: &'static str,
    /// The text (for `gap`, how many lines were folded).
    pub text: String,
    /// `+`, `-` or a space.
    pub sign: &'static str,
}

fn lines_of(v: &Json) -> Vec<String> {
    if v.is_null() {
        return Vec::new();
    }
    // serde_json's maps are sorted (no preserve_order), so equal documents print equally.
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

const CONTEXT: usize = 3;

/// The diff of `before` → `after` (either may be null: a create or a delete).
pub fn json_diff(before: &Json, after: &Json) -> Vec<Line> {
    let a = lines_of(before);
    let b = lines_of(after);
    // LCS table; audit entries are small (bounded by the body limit and the UI's use).
    let (n, m) = (a.len(), b.len());
    if n * m > 4_000_000 {
        let mut out: Vec<Line> = a.iter().map(|l| line("del", l)).collect();
        out.extend(b.iter().map(|l| line("add", l)));
        return out;
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut raw = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            raw.push(line("ctx", &a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            raw.push(line("add", &b[j]));
            j += 1;
        } else {
            raw.push(line("del", &a[i]));
            i += 1;
        }
    }
    fold(raw)
}

fn line(kind: &'static str, text: &str) -> Line {
    Line {
        kind,
        text: text.to_owned(),
        sign: match kind {
            "add" => "+",
            "del" => "-",
            _ => " ",
        },
    }
}

/// Folds unchanged runs, keeping `CONTEXT` lines around each change.
fn fold(raw: Vec<Line>) -> Vec<Line> {
    let changed: Vec<usize> = raw
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind != "ctx")
        .map(|(i, _)| i)
        .collect();
    if changed.is_empty() {
        return raw;
    }
    let keep = |i: usize| {
        changed
            .iter()
            .any(|&c| i + CONTEXT >= c && i <= c + CONTEXT)
    };
    let mut out = Vec::new();
    let mut folded = 0;
    for (i, l) in raw.into_iter().enumerate() {
        if l.kind != "ctx" || keep(i) {
            if folded > 0 {
                out.push(Line {
                    kind: "gap",
                    text: format!(
                        "… {folded} unchanged line{}",
                        if folded == 1 { "" } else { "s" }
                    ),
                    sign: " ",
                });
                folded = 0;
            }
            out.push(l);
        } else {
            folded += 1;
        }
    }
    if folded > 0 {
        out.push(Line {
            kind: "gap",
            text: format!(
                "… {folded} unchanged line{}",
                if folded == 1 { "" } else { "s" }
            ),
            sign: " ",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_show_as_removed_and_added_lines() {
        let d = json_diff(
            &json!({"name": "x", "is_enabled": true, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}),
            &json!({"name": "x", "is_enabled": false, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}),
        );
        let adds: Vec<&str> = d
            .iter()
            .filter(|l| l.kind == "add")
            .map(|l| l.text.trim())
            .collect();
        let dels: Vec<&str> = d
            .iter()
            .filter(|l| l.kind == "del")
            .map(|l| l.text.trim())
            .collect();
        assert_eq!(adds, vec!["\"is_enabled\": false,"]);
        assert_eq!(dels, vec!["\"is_enabled\": true,"]);
        assert!(d.iter().any(|l| l.kind == "gap"), "{d:?}");
    }

    #[test]
    fn creates_and_deletes_are_all_one_side() {
        let d = json_diff(&Json::Null, &json!({"name": "x"}));
        assert!(d.iter().all(|l| l.kind == "add"));
        let d = json_diff(&json!({"name": "x"}), &Json::Null);
        assert!(d.iter().all(|l| l.kind == "del"));
    }
}
