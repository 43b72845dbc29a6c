//! From the wire-form [`Ruleset`] to the immutable, pre-digested [`Engine`].
//!
//! Everything that could fail at evaluation time fails here instead, with the JSON path of the
//! culprit: evaluation itself has no error paths except the ones OpenFeature defines (unknown
//! flag, type mismatch, missing targeting key).

use std::sync::Arc;

use ahash::AHashMap;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::bucket::{BUCKETS, Layout, percent_to_bp, salt_seed};
use crate::condition::{Node, Resolver, SegmentNode, compile_condition};
use crate::engine::{
    CConfig, CExperiment, CFlag, CLayer, COverride, CPrereq, CServe, CVariant, Engine, FlagValue,
};
use crate::error::{CompileError, ErrorKind, JsonPath};
use crate::model::{Flag, FlagKind, Ruleset, Serve};

/// The longest chain of prerequisites (or nested segment references) a ruleset may have.
pub const MAX_CHAIN: usize = 16;

/// Parses JSON text into any wire type, reporting the path of the first problem.
///
/// ```
/// use optifork_core::{Flag, from_json_str};
/// let err = from_json_str::<Flag>(r#"{"name": "f", "is_enabled": "yes"}"#).unwrap_err();
/// assert_eq!(err.path.to_string(), "$.is_enabled");
/// ```
pub fn from_json_str<T: DeserializeOwned>(json: &str) -> Result<T, CompileError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(|e| CompileError {
        path: JsonPath::root(),
        kind: ErrorKind::Invalid(e.to_string()),
    })?;
    Ok(value)
}

/// Converts a parsed JSON value into any wire type, reporting the path of the first problem.
pub fn from_json_value<T: DeserializeOwned>(json: Json) -> Result<T, CompileError> {
    serde_path_to_error::deserialize(json).map_err(path_error)
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> CompileError {
    CompileError {
        path: JsonPath::from(e.path()),
        kind: ErrorKind::Invalid(e.inner().to_string()),
    }
}

fn err(path: &JsonPath, kind: ErrorKind) -> CompileError {
    CompileError::new(path, kind)
}

/// Builds a name → index map, refusing empty and duplicate names.
fn index_names<'a>(
    names: impl Iterator<Item = &'a str>,
    list: &JsonPath,
) -> Result<AHashMap<Box<str>, u32>, CompileError> {
    let mut index = AHashMap::new();
    for (i, name) in names.enumerate() {
        let here = list.index(i).key("name");
        if name.is_empty() {
            return Err(err(
                &here,
                ErrorKind::Invalid("name must not be empty".into()),
            ));
        }
        if index.insert(Box::from(name), i as u32).is_some() {
            return Err(err(&here, ErrorKind::DuplicateName(name.to_owned())));
        }
    }
    Ok(index)
}

/// Finds a cycle (or a chain longer than [`MAX_CHAIN`]) in a reference graph.
fn check_graph(
    edges: &[Vec<u32>],
    names: &dyn Fn(u32) -> String,
    path_of: &dyn Fn(u32) -> JsonPath,
    cycle: fn(Vec<String>) -> ErrorKind,
) -> Result<(), CompileError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done(usize),
    }
    fn visit(
        n: u32,
        edges: &[Vec<u32>],
        marks: &mut [Mark],
        stack: &mut Vec<u32>,
    ) -> Result<usize, Vec<u32>> {
        match marks[n as usize] {
            Mark::Done(depth) => return Ok(depth),
            Mark::Active => {
                let from = stack.iter().position(|&s| s == n).unwrap_or(0);
                let mut cyc = stack[from..].to_vec();
                cyc.push(n);
                return Err(cyc);
            }
            Mark::New => {}
        }
        marks[n as usize] = Mark::Active;
        stack.push(n);
        let mut depth = 0;
        for &m in &edges[n as usize] {
            depth = depth.max(1 + visit(m, edges, marks, stack)?);
        }
        stack.pop();
        marks[n as usize] = Mark::Done(depth);
        Ok(depth)
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut stack = Vec::new();
    for n in 0..edges.len() as u32 {
        match visit(n, edges, &mut marks, &mut stack) {
            Ok(depth) if depth > MAX_CHAIN => {
                return Err(err(
                    &path_of(n),
                    ErrorKind::Invalid(format!(
                        "reference chain is {depth} long; at most {MAX_CHAIN} is allowed"
                    )),
                ));
            }
            Ok(_) => {}
            Err(cyc) => {
                return Err(err(
                    &path_of(cyc[0]),
                    cycle(cyc.iter().map(|&i| names(i)).collect()),
                ));
            }
        }
    }
    Ok(())
}

fn percentage(pct: f64, path: &JsonPath) -> Result<u32, CompileError> {
    percent_to_bp(pct).map_err(|msg| err(path, ErrorKind::BadPercentage(msg)))
}

fn bucket_attr(attr: &Option<String>, path: &JsonPath) -> Result<Option<Box<str>>, CompileError> {
    match attr.as_deref() {
        None => Ok(None),
        Some("") => Err(err(
            path,
            ErrorKind::Invalid("bucket_by must name an attribute".into()),
        )),
        Some(a) => Ok(Some(a.into())),
    }
}

impl Engine {
    /// Compiles a ruleset, checking everything that could stop it from evaluating.
    pub fn compile(ruleset: &Ruleset) -> Result<Engine, CompileError> {
        let root = JsonPath::root();
        let flags_path = root.key("flags");
        let segments_path = root.key("segments");
        let configs_path = root.key("configs");
        let experiments_path = root.key("experiments");

        let flag_index = index_names(ruleset.flags.iter().map(|f| f.name.as_str()), &flags_path)?;
        let segment_index = index_names(
            ruleset.segments.iter().map(|s| s.name.as_str()),
            &segments_path,
        )?;
        let config_index = index_names(
            ruleset.configs.iter().map(|c| c.name.as_str()),
            &configs_path,
        )?;
        let experiment_index = index_names(
            ruleset.experiments.iter().map(|e| e.name.as_str()),
            &experiments_path,
        )?;
        let resolver = Resolver::with_segments(&segment_index);

        // Segments first: everything else may refer to them.
        let mut segments = Vec::with_capacity(ruleset.segments.len());
        for (i, s) in ruleset.segments.iter().enumerate() {
            let node = compile_condition(
                &s.criteria,
                &segments_path.index(i).key("criteria"),
                &resolver,
            )?;
            segments.push(SegmentNode {
                active: s.is_active,
                node,
            });
        }
        let edges: Vec<Vec<u32>> = segments
            .iter()
            .map(|s| {
                let mut refs = Vec::new();
                s.node.segment_refs(&mut refs);
                refs
            })
            .collect();
        check_graph(
            &edges,
            &|i| ruleset.segments[i as usize].name.clone(),
            &|i| segments_path.index(i as usize).key("criteria"),
            ErrorKind::SegmentCycle,
        )?;
        let segments: Arc<[SegmentNode]> = Arc::from(segments);

        let mut flags = Vec::with_capacity(ruleset.flags.len());
        for (i, f) in ruleset.flags.iter().enumerate() {
            flags.push(compile_flag(
                f,
                &flags_path.index(i),
                &resolver,
                &flag_index,
            )?);
        }
        // Prerequisites name variants of other flags: resolve them now that all are compiled.
        for (i, f) in ruleset.flags.iter().enumerate() {
            let here = flags_path.index(i).key("prerequisites");
            let mut prereqs = Vec::with_capacity(f.prerequisites.len());
            for (j, p) in f.prerequisites.iter().enumerate() {
                let p_path = here.index(j);
                let &target = flag_index.get(p.flag.as_str()).ok_or_else(|| {
                    err(&p_path.key("flag"), ErrorKind::UnknownFlag(p.flag.clone()))
                })?;
                let t: &CFlag = &flags[target as usize];
                let variants: Vec<u32> = if p.variants.is_empty() {
                    if t.kind != FlagKind::Boolean {
                        return Err(err(
                            &p_path.key("variants"),
                            ErrorKind::Invalid(format!(
                                "flag {:?} is not boolean: name the variants that satisfy it",
                                p.flag
                            )),
                        ));
                    }
                    (0..t.variants.len() as u32)
                        .filter(|&v| t.variants[v as usize].value == FlagValue::Bool(true))
                        .collect()
                } else {
                    p.variants
                        .iter()
                        .enumerate()
                        .map(|(k, name)| {
                            t.variant_index(name).ok_or_else(|| {
                                err(
                                    &p_path.key("variants").index(k),
                                    ErrorKind::UnknownVariant(name.clone()),
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?
                };
                prereqs.push(CPrereq {
                    flag: target,
                    variants: variants.into_boxed_slice(),
                });
            }
            flags[i].prereqs = prereqs.into_boxed_slice();
        }
        let edges: Vec<Vec<u32>> = flags
            .iter()
            .map(|f| f.prereqs.iter().map(|p| p.flag).collect())
            .collect();
        check_graph(
            &edges,
            &|i| ruleset.flags[i as usize].name.clone(),
            &|i| flags_path.index(i as usize).key("prerequisites"),
            ErrorKind::PrerequisiteCycle,
        )?;

        let mut configs = Vec::with_capacity(ruleset.configs.len());
        for (i, c) in ruleset.configs.iter().enumerate() {
            let here = configs_path.index(i);
            let mut overrides = Vec::with_capacity(c.overrides.len());
            for (j, o) in c.overrides.iter().enumerate() {
                let o_path = here.key("overrides").index(j);
                let mut nodes = Vec::new();
                if let Some(seg) = &o.segment {
                    let &idx = segment_index.get(seg.as_str()).ok_or_else(|| {
                        err(
                            &o_path.key("segment"),
                            ErrorKind::UnknownSegment(seg.clone()),
                        )
                    })?;
                    nodes.push(Node::Segment(idx));
                }
                let cond = compile_condition(&o.condition, &o_path.key("condition"), &resolver)?;
                if !cond.is_always() {
                    nodes.push(cond);
                }
                let node = match nodes.len() {
                    0 => Node::Always,
                    1 => nodes.pop().unwrap_or(Node::Always),
                    _ => Node::And(nodes.into_boxed_slice()),
                };
                overrides.push(COverride {
                    node,
                    data: o.config_data.clone(),
                });
            }
            configs.push(CConfig {
                name: c.name.as_str().into(),
                active: c.is_active,
                data: c.config_data.clone(),
                overrides: overrides.into_boxed_slice(),
            });
        }

        let mut experiments = Vec::with_capacity(ruleset.experiments.len());
        for (i, e) in ruleset.experiments.iter().enumerate() {
            let here = experiments_path.index(i);
            experiments.push(compile_experiment(e, &here, &resolver, &flag_index)?);
        }
        check_layers(&experiments, &ruleset.experiments, &experiments_path)?;

        Ok(Engine {
            environment: ruleset.environment.as_str().into(),
            version: ruleset.version,
            flags: flags.into_boxed_slice(),
            flag_index,
            configs: configs.into_boxed_slice(),
            config_index,
            segment_names: ruleset
                .segments
                .iter()
                .map(|s| Box::from(s.name.as_str()))
                .collect(),
            segments,
            segment_index,
            experiments: experiments.into_boxed_slice(),
            experiment_index,
        })
    }

    /// Parses and compiles a ruleset from JSON text.
    ///
    /// ```
    /// let engine = optifork_core::Engine::from_json(r#"{"flags": [
    ///     {"name": "new_checkout", "is_enabled": true, "rollout_percentage": 100}
    /// ]}"#).unwrap();
    /// assert!(engine.is_enabled("new_checkout", &optifork_core::Context::new("u1")));
    /// ```
    pub fn from_json(json: &str) -> Result<Engine, CompileError> {
        Engine::compile(&from_json_str::<Ruleset>(json)?)
    }
}

fn infer_kind(flag: &Flag) -> FlagKind {
    if let Some(kind) = flag.kind {
        return kind;
    }
    let values = || flag.variants.iter().map(|v| &v.value);
    if values().all(Json::is_boolean) {
        FlagKind::Boolean
    } else if values().all(Json::is_string) {
        FlagKind::String
    } else if values().all(Json::is_number) {
        FlagKind::Number
    } else {
        FlagKind::Json
    }
}

fn json_type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn variant_value(kind: FlagKind, value: &Json, path: &JsonPath) -> Result<FlagValue, CompileError> {
    let mismatch = || {
        err(
            path,
            ErrorKind::VariantType {
                expected: kind.as_str(),
                found: json_type_name(value),
            },
        )
    };
    Ok(match kind {
        FlagKind::Boolean => FlagValue::Bool(value.as_bool().ok_or_else(mismatch)?),
        FlagKind::String => FlagValue::String(value.as_str().ok_or_else(mismatch)?.into()),
        FlagKind::Number => FlagValue::Number(value.as_f64().ok_or_else(mismatch)?),
        FlagKind::Json => FlagValue::Json(value.clone()),
    })
}

fn compile_flag(
    f: &Flag,
    path: &JsonPath,
    resolver: &Resolver<'_>,
    flag_index: &AHashMap<Box<str>, u32>,
) -> Result<CFlag, CompileError> {
    let kind = infer_kind(f);
    let mut variants = Vec::with_capacity(f.variants.len().max(2));
    if f.variants.is_empty() {
        if kind != FlagKind::Boolean {
            return Err(err(
                &path.key("variants"),
                ErrorKind::Invalid(format!("a {} flag needs variants", kind.as_str())),
            ));
        }
        variants.push(CVariant {
            name: "on".into(),
            value: FlagValue::Bool(true),
        });
        variants.push(CVariant {
            name: "off".into(),
            value: FlagValue::Bool(false),
        });
    }
    for (i, v) in f.variants.iter().enumerate() {
        let here = path.key("variants").index(i);
        if v.name.is_empty() {
            return Err(err(
                &here.key("name"),
                ErrorKind::Invalid("name must not be empty".into()),
            ));
        }
        if variants.iter().any(|c: &CVariant| *c.name == *v.name) {
            return Err(err(
                &here.key("name"),
                ErrorKind::DuplicateName(v.name.clone()),
            ));
        }
        variants.push(CVariant {
            name: v.name.as_str().into(),
            value: variant_value(kind, &v.value, &here.key("value"))?,
        });
    }
    let find = |name: &str| {
        variants
            .iter()
            .position(|v| &*v.name == name)
            .map(|i| i as u32)
    };

    let off = match &f.off_variant {
        Some(name) => Some(find(name).ok_or_else(|| {
            err(
                &path.key("off_variant"),
                ErrorKind::UnknownVariant(name.clone()),
            )
        })?),
        None => find("off"),
    };
    let flag_bucket_by = bucket_attr(&f.bucket_by, &path.key("bucket_by"))?;

    let mut rules = Vec::with_capacity(f.rules.len());
    for (i, r) in f.rules.iter().enumerate() {
        let here = path.key("rules").index(i);
        let node = compile_condition(&r.condition, &here.key("condition"), resolver)?;
        let serve = compile_serve(&r.serve, &here.key("serve"), &find)?;
        rules.push((node, serve));
    }
    let default = match &f.default {
        Some(s) => compile_serve(s, &path.key("default"), &find)?,
        None => CServe::Variant(find("on").unwrap_or(0)),
    };
    let targeting = compile_condition(&f.targeting_rules, &path.key("targeting_rules"), resolver)?;
    let rollout_bp = percentage(f.rollout_percentage, &path.key("rollout_percentage"))?;
    // Prerequisites are resolved once every flag is compiled; check the names exist now so the
    // error points at the right place even when a later flag is also broken.
    for (j, p) in f.prerequisites.iter().enumerate() {
        if !flag_index.contains_key(p.flag.as_str()) {
            return Err(err(
                &path.key("prerequisites").index(j).key("flag"),
                ErrorKind::UnknownFlag(p.flag.clone()),
            ));
        }
    }
    let salt = f.salt.as_deref().unwrap_or(&f.name);
    Ok(CFlag {
        name: f.name.as_str().into(),
        kind,
        enabled: f.is_enabled,
        track: f.track,
        variants: variants.into_boxed_slice(),
        off,
        prereqs: Box::new([]),
        has_targeting: !targeting.is_always(),
        targeting,
        rollout_bp,
        rules: rules.into_boxed_slice(),
        default,
        seed: salt_seed(salt),
        bucket_by: flag_bucket_by,
    })
}

fn compile_serve(
    serve: &Serve,
    path: &JsonPath,
    find: &dyn Fn(&str) -> Option<u32>,
) -> Result<CServe, CompileError> {
    let bucket_by = bucket_attr(&serve.bucket_by, &path.key("bucket_by"))?;
    match (&serve.variant, &serve.rollout) {
        (Some(name), None) => find(name).map(CServe::Variant).ok_or_else(|| {
            err(
                &path.key("variant"),
                ErrorKind::UnknownVariant(name.clone()),
            )
        }),
        (None, Some(rollout)) => {
            let here = path.key("rollout");
            if rollout.is_empty() {
                return Err(err(
                    &here,
                    ErrorKind::Invalid("a rollout needs at least one variant".into()),
                ));
            }
            let mut indexes = Vec::with_capacity(rollout.len());
            let mut weights = Vec::with_capacity(rollout.len());
            for (i, wv) in rollout.iter().enumerate() {
                let item = here.index(i);
                let idx = find(&wv.variant).ok_or_else(|| {
                    err(
                        &item.key("variant"),
                        ErrorKind::UnknownVariant(wv.variant.clone()),
                    )
                })?;
                if indexes.contains(&idx) {
                    return Err(err(
                        &item.key("variant"),
                        ErrorKind::DuplicateName(wv.variant.clone()),
                    ));
                }
                indexes.push(idx);
                weights.push(percentage(wv.weight, &item.key("weight"))?);
            }
            let sum: u32 = weights.iter().sum();
            if sum != BUCKETS {
                return Err(err(&here, ErrorKind::WeightsSum(f64::from(sum) / 100.0)));
            }
            let layout = Layout::new(&weights, BUCKETS);
            Ok(match layout.single() {
                Some(i) => CServe::Variant(indexes[i]),
                None => CServe::Split {
                    layout,
                    variants: indexes.into_boxed_slice(),
                    bucket_by,
                },
            })
        }
        _ => Err(err(
            path,
            ErrorKind::Invalid("serve needs exactly one of \"variant\" and \"rollout\"".into()),
        )),
    }
}

fn compile_experiment(
    e: &crate::model::Experiment,
    path: &JsonPath,
    resolver: &Resolver<'_>,
    flag_index: &AHashMap<Box<str>, u32>,
) -> Result<CExperiment, CompileError> {
    let vpath = path.key("variants");
    if e.variants.is_empty() {
        return Err(err(
            &vpath,
            ErrorKind::Invalid("an experiment needs at least one variant".into()),
        ));
    }
    let mut names: Vec<Box<str>> = Vec::with_capacity(e.variants.len());
    for (i, v) in e.variants.iter().enumerate() {
        let here = vpath.index(i);
        if v.name.is_empty() {
            return Err(err(
                &here,
                ErrorKind::Invalid("name must not be empty".into()),
            ));
        }
        if names.iter().any(|n| **n == *v.name) {
            return Err(err(&here, ErrorKind::DuplicateName(v.name.clone())));
        }
        names.push(v.name.as_str().into());
    }
    let control_name = e.control.as_deref().unwrap_or("control");
    let control = names
        .iter()
        .position(|n| &**n == control_name)
        .ok_or_else(|| {
            let at = if e.control.is_some() {
                path.key("control")
            } else {
                vpath.clone()
            };
            err(&at, ErrorKind::MissingControl(control_name.to_owned()))
        })? as u32;

    let weights: Vec<u32> = match &e.traffic_splits {
        None => {
            let n = names.len() as u32;
            (0..n)
                .map(|i| BUCKETS / n + u32::from(i < BUCKETS % n))
                .collect()
        }
        Some(splits) => {
            let spath = path.key("traffic_splits");
            if let Some(unknown) = splits.keys().find(|k| !names.iter().any(|n| **n == ***k)) {
                return Err(err(
                    &spath.key(unknown),
                    ErrorKind::UnknownVariant(unknown.clone()),
                ));
            }
            let mut weights = Vec::with_capacity(names.len());
            for name in &names {
                let pct = splits.get(&**name).ok_or_else(|| {
                    err(
                        &spath,
                        ErrorKind::Invalid(format!("no traffic split for variant {name:?}")),
                    )
                })?;
                weights.push(percentage(*pct, &spath.key(name))?);
            }
            let sum: u32 = weights.iter().sum();
            if sum != BUCKETS {
                return Err(err(&spath, ErrorKind::WeightsSum(f64::from(sum) / 100.0)));
            }
            weights
        }
    };
    let allocation = percentage(e.allocation, &path.key("allocation"))?;
    let layer = match &e.layer {
        None => None,
        Some(l) => {
            let lpath = path.key("layer");
            if l.name.is_empty() {
                return Err(err(
                    &lpath.key("name"),
                    ErrorKind::Invalid("name must not be empty".into()),
                ));
            }
            let start = percentage(l.range[0], &lpath.key("range").index(0))?;
            let end = percentage(l.range[1], &lpath.key("range").index(1))?;
            if start >= end {
                return Err(err(
                    &lpath.key("range"),
                    ErrorKind::BadPercentage("the range's start must be below its end".into()),
                ));
            }
            Some(CLayer {
                name: l.name.as_str().into(),
                seed: salt_seed(&l.name),
                start,
                end,
            })
        }
    };
    if let Some(flag) = &e.flag
        && !flag_index.contains_key(flag.as_str())
    {
        return Err(err(&path.key("flag"), ErrorKind::UnknownFlag(flag.clone())));
    }
    let targeting = compile_condition(&e.targeting_rules, &path.key("targeting_rules"), resolver)?;
    Ok(CExperiment {
        name: e.name.as_str().into(),
        active: e.is_active,
        variants: names.into_boxed_slice(),
        control,
        targeting,
        layout: Layout::new(&weights, allocation),
        seed: salt_seed(e.salt.as_deref().unwrap_or(&e.name)),
        bucket_by: bucket_attr(&e.bucket_by, &path.key("bucket_by"))?,
        layer,
    })
}

/// Running experiments of one layer must claim disjoint ranges.
fn check_layers(
    compiled: &[CExperiment],
    wire: &[crate::model::Experiment],
    path: &JsonPath,
) -> Result<(), CompileError> {
    let mut by_layer: AHashMap<&str, Vec<(u32, u32, usize)>> = AHashMap::new();
    for (i, e) in compiled.iter().enumerate() {
        if let (true, Some(l)) = (e.active, &e.layer) {
            by_layer
                .entry(&l.name)
                .or_default()
                .push((l.start, l.end, i));
        }
    }
    for ranges in by_layer.values_mut() {
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            let ((_, end_a, a), (start_b, _, b)) = (pair[0], pair[1]);
            if start_b < end_a {
                return Err(err(
                    &path.index(b).key("layer").key("range"),
                    ErrorKind::LayerOverlap(wire[a].name.clone()),
                ));
            }
        }
    }
    Ok(())
}
