//! What changed between two rulesets, entity by entity.

use std::io;

use optifork_core::Ruleset;
use serde::Serialize;
use std::collections::HashMap;
use xxhash_rust::xxh64::Xxh64;

use crate::status::Source;

/// The entities whose definitions differ between the previous ruleset and the new one:
/// added, removed or modified. Given to change listeners
/// ([`Client::on_change`](crate::Client::on_change), [`Client::subscribe`](crate::Client::subscribe)).
///
/// Definitions are compared, not results: editing a segment lists the segment, not the
/// flags whose targeting refers to it (their results may change all the same).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The version served before; `None` when nothing was.
    pub previous_version: Option<u64>,
    /// The version served now.
    pub version: u64,
    /// Where the new ruleset came from; `None` only in [`Change::default`].
    pub source: Option<Source>,
    /// Flags added, removed or modified, sorted by name.
    pub flags: Vec<String>,
    /// Configs added, removed or modified, sorted by name.
    pub configs: Vec<String>,
    /// Segments added, removed or modified, sorted by name.
    pub segments: Vec<String>,
    /// Experiments added, removed or modified, sorted by name.
    pub experiments: Vec<String>,
}

impl Change {
    /// Whether no entity changed.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
            && self.configs.is_empty()
            && self.segments.is_empty()
            && self.experiments.is_empty()
    }

    /// Whether the flag named `name` changed.
    pub fn flag_changed(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// Whether the config named `name` changed.
    pub fn config_changed(&self, name: &str) -> bool {
        self.configs.iter().any(|c| c == name)
    }
}

/// A hash of each entity's definition, by name: enough to tell what changed without keeping
/// a second copy of the ruleset in memory.
#[derive(Default)]
pub(crate) struct Fingerprints {
    version: Option<u64>,
    flags: HashMap<Box<str>, u64>,
    configs: HashMap<Box<str>, u64>,
    segments: HashMap<Box<str>, u64>,
    experiments: HashMap<Box<str>, u64>,
}

struct HashWriter(Xxh64);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hash<T: Serialize>(entity: &T) -> u64 {
    let mut w = HashWriter(Xxh64::new(0));
    // Serializing model types to a writer that cannot fail cannot fail.
    let _ = serde_json::to_writer(&mut w, entity);
    w.0.digest()
}

fn index<'a, T: Serialize + 'a>(
    items: impl Iterator<Item = (&'a str, &'a T)>,
) -> HashMap<Box<str>, u64> {
    items.map(|(name, e)| (name.into(), hash(e))).collect()
}

fn diff(old: &HashMap<Box<str>, u64>, new: &HashMap<Box<str>, u64>) -> Vec<String> {
    let mut names: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.to_string())
        .chain(
            old.keys()
                .filter(|k| !new.contains_key(*k))
                .map(|k| k.to_string()),
        )
        .collect();
    names.sort_unstable();
    names
}

impl Fingerprints {
    pub(crate) fn of(ruleset: &Ruleset) -> Fingerprints {
        Fingerprints {
            version: Some(ruleset.version),
            flags: index(ruleset.flags.iter().map(|f| (f.name.as_str(), f))),
            configs: index(ruleset.configs.iter().map(|c| (c.name.as_str(), c))),
            segments: index(ruleset.segments.iter().map(|s| (s.name.as_str(), s))),
            experiments: index(ruleset.experiments.iter().map(|e| (e.name.as_str(), e))),
        }
    }

    /// What changed from `self` to `new`.
    pub(crate) fn changes_to(&self, new: &Fingerprints, source: Source) -> Change {
        Change {
            previous_version: self.version,
            version: new.version.unwrap_or_default(),
            source: Some(source),
            flags: diff(&self.flags, &new.flags),
            configs: diff(&self.configs, &new.configs),
            segments: diff(&self.segments, &new.segments),
            experiments: diff(&self.experiments, &new.experiments),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(json: serde_json::Value) -> Ruleset {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn added_removed_and_modified_entities_are_named_and_unchanged_ones_are_not() {
        let old = ruleset(serde_json::json!({"version": 1,
            "flags": [{"name": "same", "is_enabled": true}, {"name": "edited", "is_enabled": true},
                      {"name": "removed"}],
            "configs": [{"name": "c", "config_data": {"a": 1}}],
            "segments": [{"name": "s", "criteria": {"tier": "gold"}}]}));
        let new = ruleset(serde_json::json!({"version": 2,
            "flags": [{"name": "same", "is_enabled": true}, {"name": "edited", "is_enabled": false},
                      {"name": "added"}],
            "configs": [{"name": "c", "config_data": {"a": 1}}],
            "segments": [{"name": "s", "criteria": {"tier": "silver"}}],
            "experiments": [{"name": "e", "variants": ["control", "b"]}]}));
        let change = Fingerprints::of(&old).changes_to(&Fingerprints::of(&new), Source::Server);
        assert_eq!(change.previous_version, Some(1));
        assert_eq!(change.version, 2);
        assert_eq!(change.flags, ["added", "edited", "removed"]);
        assert!(change.configs.is_empty());
        assert_eq!(change.segments, ["s"]);
        assert_eq!(change.experiments, ["e"]);
        let none = Fingerprints::of(&new).changes_to(&Fingerprints::of(&new), Source::Server);
        assert!(none.is_empty());
    }
}
