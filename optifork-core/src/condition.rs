//! The condition language: MongoDB-style JSON queries, compiled once, matched many times.
//!
//! See the crate documentation for the operators and every divergence from MongoDB.

use std::cmp::Ordering;
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};
use compact_str::CompactString;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value as Json};

use crate::error::{CompileError, ErrorKind, JsonPath};
use crate::value::{Attr, Context, Value};

/// How deeply conditions may nest (operators and segment references together). Deeper
/// documents are refused at compile time so that matching can never exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// Above this many strings, `$in`/`$nin` use a hash set instead of a linear scan.
const HASH_SET_THRESHOLD: usize = 8;

/// A compiled condition, ready to match contexts.
///
/// ```
/// use optifork_core::{Condition, Context};
/// let cond = Condition::compile(&serde_json::json!({
///     "country": {"$in": ["US", "CA"]}, "age": {"$gte": 18}
/// })).unwrap();
/// assert!(cond.matches(&Context::new("u1").with("country", "US").with("age", 18.0)));
/// assert!(!cond.matches(&Context::new("u2").with("country", "FR").with("age", 40)));
/// ```
#[derive(Clone, Debug)]
pub struct Condition {
    node: Node,
    segments: Arc<[SegmentNode]>,
}

impl Condition {
    /// Compiles a condition that does not reference segments (`$segment` is refused: use
    /// [`crate::Engine::compile_condition`] to resolve segments against a ruleset).
    pub fn compile(json: &Json) -> Result<Condition, CompileError> {
        let node = compile_condition(json, &JsonPath::root(), &Resolver::none())?;
        Ok(Condition {
            node,
            segments: Arc::from(Vec::new()),
        })
    }

    pub(crate) fn with_segments(node: Node, segments: Arc<[SegmentNode]>) -> Condition {
        Condition { node, segments }
    }

    /// Whether the context matches.
    pub fn matches(&self, ctx: &Context) -> bool {
        self.node.matches(Root::Ctx(ctx), &self.segments)
    }
}

/// A compiled segment as conditions see it.
#[derive(Clone, Debug)]
pub(crate) struct SegmentNode {
    pub(crate) active: bool,
    pub(crate) node: Node,
}

/// A compiled condition node.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Always,
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Nor(Box<[Node]>),
    Not(Box<Node>),
    Segment(u32),
    Field(Box<Field>),
}

#[derive(Clone, Debug)]
pub(crate) struct Field {
    path: FieldPath,
    tests: Box<[Test]>,
}

#[derive(Clone, Debug)]
struct FieldPath {
    first: Box<str>,
    rest: Box<[Step]>,
}

#[derive(Clone, Debug)]
struct Step {
    key: Box<str>,
    index: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    fn accepts(self, o: Ordering) -> bool {
        match self {
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Gte => o != Ordering::Less,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Lte => o != Ordering::Greater,
        }
    }
}

#[derive(Clone, Debug)]
enum VerOp {
    Cmp(CmpOp),
    Eq,
}

/// One test on a field. Positive tests hold when some value reached by the path satisfies
/// them; negative ones (`$ne`, `$nin`, `$not`, `$vne`) are the negation of a positive one over
/// the whole field, as in MongoDB.
#[derive(Clone, Debug)]
enum Test {
    Eq(Value),
    Ne(Value),
    Cmp(CmpOp, Value),
    In(Box<LitSet>),
    Nin(Box<LitSet>),
    Exists(bool),
    Regex(Box<Regex>),
    Size(usize),
    All(Box<[Value]>),
    ElemMatch(Box<ElemMatch>),
    Not(Box<[Test]>),
    Version(VerOp, Box<semver::Version>),
    VersionNe(Box<semver::Version>),
}

#[derive(Clone, Debug)]
enum ElemMatch {
    /// `{"$elemMatch": {"$gte": 80}}`: tests on the element itself.
    Value(Box<[Test]>),
    /// `{"$elemMatch": {"sku": "x"}}`: a condition on each element as a document.
    Doc(Node),
}

/// The literals of an `$in`/`$nin`, grouped by type for fast membership tests.
#[derive(Clone, Debug, Default)]
struct LitSet {
    strs: StrSet,
    nums: Vec<f64>,
    has_true: bool,
    has_false: bool,
    has_null: bool,
    others: Vec<Value>,
}

#[derive(Clone, Debug)]
enum StrSet {
    Small(Box<[Box<str>]>),
    Hashed(AHashSet<Box<str>>),
}

impl Default for StrSet {
    fn default() -> StrSet {
        StrSet::Small(Box::new([]))
    }
}

impl StrSet {
    fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(items) => items.iter().any(|i| &**i == s),
            StrSet::Hashed(set) => set.contains(s),
        }
    }
}

impl LitSet {
    fn contains(&self, v: VRef<'_>) -> bool {
        match v {
            VRef::Null => self.has_null,
            VRef::Bool(true) => self.has_true,
            VRef::Bool(false) => self.has_false,
            VRef::Num(n) => self.nums.contains(&n),
            VRef::Str(s) => self.strs.contains(s),
            other => self.others.iter().any(|o| other.eq_value(o)),
        }
    }
}

/// A borrowed view of a value reached by a path (the targeting key reads as a string).
#[derive(Clone, Copy, Debug)]
enum VRef<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Arr(&'a [Value]),
    Obj(&'a [(CompactString, Value)]),
}

impl<'a> From<&'a Value> for VRef<'a> {
    fn from(v: &'a Value) -> VRef<'a> {
        match v {
            Value::Null => VRef::Null,
            Value::Bool(b) => VRef::Bool(*b),
            Value::Number(n) => VRef::Num(*n),
            Value::String(s) => VRef::Str(s),
            Value::Array(a) => VRef::Arr(a),
            Value::Object(o) => VRef::Obj(o),
        }
    }
}

impl VRef<'_> {
    fn eq_value(self, lit: &Value) -> bool {
        match (self, lit) {
            (VRef::Null, Value::Null) => true,
            (VRef::Bool(a), Value::Bool(b)) => a == *b,
            (VRef::Num(a), Value::Number(b)) => a == *b,
            (VRef::Str(a), Value::String(b)) => a == b.as_str(),
            (VRef::Arr(a), Value::Array(b)) => a == b.as_slice(),
            (VRef::Obj(a), lit @ Value::Object(_)) => {
                // Borrowed-to-owned comparison without allocating: compare entry-wise.
                let Value::Object(b) = lit else { return false };
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| crate::value::lookup(b, k).is_some_and(|bv| bv == v))
            }
            _ => false,
        }
    }

    /// Ordering within one type bracket (numbers, strings, booleans); `None` across types.
    fn cmp_value(self, lit: &Value) -> Option<Ordering> {
        match (self, lit) {
            (VRef::Num(a), Value::Number(b)) => a.partial_cmp(b),
            (VRef::Str(a), Value::String(b)) => Some(a.cmp(b.as_str())),
            (VRef::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Where paths start: the context, or an array element inside `$elemMatch`.
#[derive(Clone, Copy)]
enum Root<'a> {
    Ctx(&'a Context),
    Doc(&'a [(CompactString, Value)]),
}

impl Node {
    fn matches(&self, root: Root<'_>, segments: &[SegmentNode]) -> bool {
        match self {
            Node::Always => true,
            Node::And(nodes) => nodes.iter().all(|n| n.matches(root, segments)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(root, segments)),
            Node::Nor(nodes) => !nodes.iter().any(|n| n.matches(root, segments)),
            Node::Not(node) => !node.matches(root, segments),
            Node::Segment(i) => {
                let seg = &segments[*i as usize];
                seg.active && seg.node.matches(root, segments)
            }
            Node::Field(field) => {
                let src = PathSource {
                    root,
                    path: &field.path,
                };
                field.tests.iter().all(|t| field_test(src, t, segments))
            }
        }
    }

    /// Segments this node refers to, directly.
    pub(crate) fn segment_refs(&self, out: &mut Vec<u32>) {
        match self {
            Node::Always => {}
            Node::And(n) | Node::Or(n) | Node::Nor(n) => {
                n.iter().for_each(|n| n.segment_refs(out));
            }
            Node::Not(n) => n.segment_refs(out),
            Node::Segment(i) => out.push(*i),
            Node::Field(f) => f.tests.iter().for_each(|t| t.segment_refs(out)),
        }
    }

    /// Whether a context matches.
    #[inline]
    pub(crate) fn matches_ctx(&self, ctx: &Context, segments: &[SegmentNode]) -> bool {
        self.matches(Root::Ctx(ctx), segments)
    }

    pub(crate) fn is_always(&self) -> bool {
        matches!(self, Node::Always)
    }
}

impl Test {
    fn segment_refs(&self, out: &mut Vec<u32>) {
        match self {
            Test::ElemMatch(em) => match &**em {
                ElemMatch::Doc(n) => n.segment_refs(out),
                ElemMatch::Value(tests) => tests.iter().for_each(|t| t.segment_refs(out)),
            },
            Test::Not(tests) => tests.iter().for_each(|t| t.segment_refs(out)),
            _ => {}
        }
    }
}

/// Something tests read values from: a path from a root, or a single value.
trait Source<'a>: Copy {
    /// Calls `f` on every value reached, stopping at the first `true`. `None` when nothing
    /// is reached (the attribute is missing), else whether `f` returned `true`.
    fn visit<F: FnMut(VRef<'a>) -> bool>(self, f: &mut F) -> Option<bool>;
}

#[derive(Clone, Copy)]
struct PathSource<'a, 'p> {
    root: Root<'a>,
    path: &'p FieldPath,
}

impl<'a> Source<'a> for PathSource<'a, '_> {
    #[inline]
    fn visit<F: FnMut(VRef<'a>) -> bool>(self, f: &mut F) -> Option<bool> {
        let first: VRef<'a> = match self.root {
            Root::Ctx(ctx) => match ctx.attr(&self.path.first)? {
                Attr::Value(v) => VRef::from(v),
                Attr::Key(k) => VRef::Str(k),
            },
            Root::Doc(doc) => VRef::from(crate::value::lookup(doc, &self.path.first)?),
        };
        if self.path.rest.is_empty() {
            return Some(f(first));
        }
        let mut found = false;
        let hit = walk(first, &self.path.rest, &mut found, f);
        found.then_some(hit)
    }
}

/// One value, as the element tested by `{"$elemMatch": {"$gt": 1}}`.
#[derive(Clone, Copy)]
struct One<'a>(VRef<'a>);

impl<'a> Source<'a> for One<'a> {
    #[inline]
    fn visit<F: FnMut(VRef<'a>) -> bool>(self, f: &mut F) -> Option<bool> {
        Some(f(self.0))
    }
}

fn walk<'a, F: FnMut(VRef<'a>) -> bool>(
    cur: VRef<'a>,
    rest: &[Step],
    found: &mut bool,
    f: &mut F,
) -> bool {
    let Some((step, rest)) = rest.split_first() else {
        *found = true;
        return f(cur);
    };
    match cur {
        VRef::Obj(entries) => match crate::value::lookup(entries, &step.key) {
            Some(v) => walk(VRef::from(v), rest, found, f),
            None => false,
        },
        VRef::Arr(items) => {
            if let Some(v) = step.index.and_then(|i| items.get(i))
                && walk(VRef::from(v), rest, found, f)
            {
                return true;
            }
            items.iter().any(|item| match item {
                Value::Object(entries) => match crate::value::lookup(entries, &step.key) {
                    Some(v) => walk(VRef::from(v), rest, found, f),
                    None => false,
                },
                _ => false,
            })
        }
        _ => false,
    }
}

/// Evaluates one test over everything the source reaches.
fn field_test<'a>(src: impl Source<'a>, test: &Test, segments: &[SegmentNode]) -> bool {
    match test {
        Test::Eq(lit) => positive(src, |v| eq_test(v, lit), lit.is_null()),
        Test::Ne(lit) => !positive(src, |v| eq_test(v, lit), lit.is_null()),
        Test::Cmp(op, lit) => positive(src, |v| expand(v, |x| cmp_test(x, *op, lit)), false),
        Test::In(set) => positive(src, |v| in_set(set, v), set.has_null),
        Test::Nin(set) => !positive(src, |v| in_set(set, v), set.has_null),
        Test::Exists(want) => src.visit(&mut |_| true).is_some() == *want,
        Test::Regex(re) => positive(
            src,
            |v| expand(v, |x| matches!(x, VRef::Str(s) if re.is_match(s))),
            false,
        ),
        Test::Size(n) => positive(src, |v| matches!(v, VRef::Arr(a) if a.len() == *n), false),
        Test::All(lits) => {
            !lits.is_empty()
                && lits
                    .iter()
                    .all(|lit| positive(src, |v| eq_test(v, lit), lit.is_null()))
        }
        Test::ElemMatch(em) => positive(
            src,
            |v| match v {
                VRef::Arr(items) => items.iter().any(|item| elem_match(em, item, segments)),
                _ => false,
            },
            false,
        ),
        Test::Not(tests) => !tests.iter().all(|t| field_test(src, t, segments)),
        Test::Version(op, ver) => positive(src, |v| version_test(v, op, ver), false),
        Test::VersionNe(ver) => !positive(src, |v| version_test(v, &VerOp::Eq, ver), false),
    }
}

/// True when some reached value satisfies `f`; `missing` when nothing is reached.
#[inline]
fn positive<'a>(src: impl Source<'a>, mut f: impl FnMut(VRef<'a>) -> bool, missing: bool) -> bool {
    src.visit(&mut f).unwrap_or(missing)
}

/// `f` on the value, or on any element when it is an array (one level, as MongoDB).
#[inline]
fn expand(v: VRef<'_>, mut f: impl FnMut(VRef<'_>) -> bool) -> bool {
    f(v) || matches!(v, VRef::Arr(items) if items.iter().any(|i| f(VRef::from(i))))
}

fn eq_test(v: VRef<'_>, lit: &Value) -> bool {
    v.eq_value(lit) || matches!(v, VRef::Arr(items) if items.iter().any(|i| i == lit))
}

fn in_set(set: &LitSet, v: VRef<'_>) -> bool {
    set.contains(v)
        || matches!(v, VRef::Arr(items) if items.iter().any(|i| set.contains(VRef::from(i))))
}

fn cmp_test(v: VRef<'_>, op: CmpOp, lit: &Value) -> bool {
    v.cmp_value(lit).is_some_and(|o| op.accepts(o))
}

fn version_test(v: VRef<'_>, op: &VerOp, want: &semver::Version) -> bool {
    expand(v, |x| {
        let VRef::Str(s) = x else { return false };
        let Some(have) = parse_version(s) else {
            return false;
        };
        let o = have.cmp_precedence(want);
        match op {
            VerOp::Eq => o == Ordering::Equal,
            VerOp::Cmp(c) => c.accepts(o),
        }
    })
}

fn elem_match(em: &ElemMatch, item: &Value, segments: &[SegmentNode]) -> bool {
    match em {
        ElemMatch::Value(tests) => tests
            .iter()
            .all(|t| field_test(One(VRef::from(item)), t, segments)),
        ElemMatch::Doc(node) => match item {
            Value::Object(entries) => node.matches(Root::Doc(entries), segments),
            _ => false,
        },
    }
}

/// Parses a version leniently: a leading `v` is dropped and missing minor/patch numbers are
/// zero (`2.3` is `2.3.0`). Strict semver otherwise.
pub(crate) fn parse_version(s: &str) -> Option<semver::Version> {
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s).trim();
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let split = s.find(['-', '+']).unwrap_or(s.len());
    let (core, tail) = s.split_at(split);
    let dots = core.bytes().filter(|&b| b == b'.').count();
    if dots >= 2 || core.is_empty() {
        return None;
    }
    let mut padded = CompactString::from(core);
    for _ in dots..2 {
        padded.push_str(".0");
    }
    padded.push_str(tail);
    semver::Version::parse(&padded).ok()
}

/// Resolves `$segment` names while compiling.
pub(crate) struct Resolver<'a> {
    segments: Option<&'a AHashMap<Box<str>, u32>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn none() -> Resolver<'static> {
        Resolver { segments: None }
    }

    pub(crate) fn with_segments(segments: &'a AHashMap<Box<str>, u32>) -> Resolver<'a> {
        Resolver {
            segments: Some(segments),
        }
    }
}

/// Compiles a condition document (`null` and `{}` match everyone).
pub(crate) fn compile_condition(
    json: &Json,
    path: &JsonPath,
    resolver: &Resolver<'_>,
) -> Result<Node, CompileError> {
    match json {
        Json::Null => Ok(Node::Always),
        Json::Object(obj) => compile_doc(obj, path, resolver, 0),
        other => Err(CompileError::new(
            path,
            ErrorKind::Invalid(format!(
                "a condition must be an object, not {}",
                json_type(other)
            )),
        )),
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn too_deep(path: &JsonPath) -> CompileError {
    CompileError::new(
        path,
        ErrorKind::Invalid(format!("condition nests deeper than {MAX_DEPTH} levels")),
    )
}

fn bad_operand(path: &JsonPath, operator: &str, expected: &'static str) -> CompileError {
    CompileError::new(
        path,
        ErrorKind::BadOperand {
            operator: operator.to_owned(),
            expected,
        },
    )
}

fn and_of(mut nodes: Vec<Node>) -> Node {
    match nodes.len() {
        0 => Node::Always,
        1 => nodes.pop().unwrap_or(Node::Always),
        _ => Node::And(nodes.into_boxed_slice()),
    }
}

fn compile_doc(
    obj: &Map<String, Json>,
    path: &JsonPath,
    resolver: &Resolver<'_>,
    depth: usize,
) -> Result<Node, CompileError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let mut nodes = Vec::with_capacity(obj.len());
    for (key, value) in obj {
        let here = path.key(key);
        let node = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let items = value
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad_operand(&here, key, "a non-empty array of conditions"))?;
                let mut children = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = here.index(i);
                    let doc = item
                        .as_object()
                        .ok_or_else(|| bad_operand(&item_path, key, "an array of objects"))?;
                    children.push(compile_doc(doc, &item_path, resolver, depth + 1)?);
                }
                let children = children.into_boxed_slice();
                match key.as_str() {
                    "$and" => Node::And(children),
                    "$or" => Node::Or(children),
                    _ => Node::Nor(children),
                }
            }
            "$not" => {
                let doc = value
                    .as_object()
                    .ok_or_else(|| bad_operand(&here, key, "a condition object"))?;
                Node::Not(Box::new(compile_doc(doc, &here, resolver, depth + 1)?))
            }
            "$segment" => {
                let name = value
                    .as_str()
                    .ok_or_else(|| bad_operand(&here, key, "a segment name"))?;
                let Some(segments) = resolver.segments else {
                    return Err(CompileError::new(
                        &here,
                        ErrorKind::Invalid(
                            "$segment needs a ruleset to resolve segments against".into(),
                        ),
                    ));
                };
                match segments.get(name) {
                    Some(&i) => Node::Segment(i),
                    None => {
                        return Err(CompileError::new(
                            &here,
                            ErrorKind::UnknownSegment(name.to_owned()),
                        ));
                    }
                }
            }
            op if op.starts_with('$') => {
                return Err(CompileError::new(
                    &here,
                    ErrorKind::UnknownOperator(op.to_owned()),
                ));
            }
            field => {
                let field_path = compile_path(field, &here)?;
                let tests = compile_field_value(value, &here, resolver, depth + 1)?;
                Node::Field(Box::new(Field {
                    path: field_path,
                    tests,
                }))
            }
        };
        nodes.push(node);
    }
    Ok(and_of(nodes))
}

fn compile_path(field: &str, path: &JsonPath) -> Result<FieldPath, CompileError> {
    let mut parts = field.split('.');
    let first = parts.next().unwrap_or_default();
    let steps: Vec<Step> = parts
        .map(|p| Step {
            key: p.into(),
            index: p
                .parse()
                .ok()
                .filter(|_| p.bytes().all(|b| b.is_ascii_digit())),
        })
        .collect();
    if first.is_empty() || steps.iter().any(|s| s.key.is_empty()) {
        return Err(CompileError::new(
            path,
            ErrorKind::Invalid(format!("attribute path {field:?} has an empty part")),
        ));
    }
    Ok(FieldPath {
        first: first.into(),
        rest: steps.into_boxed_slice(),
    })
}

fn is_operator_object(value: &Json) -> Option<&Map<String, Json>> {
    value
        .as_object()
        .filter(|o| o.keys().next().is_some_and(|k| k.starts_with('$')))
}

/// The tests of `{"field": <value>}`: an operator object, or a literal for equality.
fn compile_field_value(
    value: &Json,
    path: &JsonPath,
    resolver: &Resolver<'_>,
    depth: usize,
) -> Result<Box<[Test]>, CompileError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    match is_operator_object(value) {
        Some(ops) => compile_operators(ops, path, resolver, depth),
        None => Ok(Box::new([Test::Eq(literal(value, path, depth)?)])),
    }
}

fn literal(value: &Json, path: &JsonPath, depth: usize) -> Result<Value, CompileError> {
    if json_depth(value) + depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    Ok(Value::from(value))
}

fn json_depth(v: &Json) -> usize {
    match v {
        Json::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Json::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn compile_operators(
    ops: &Map<String, Json>,
    path: &JsonPath,
    resolver: &Resolver<'_>,
    depth: usize,
) -> Result<Box<[Test]>, CompileError> {
    let mut tests = Vec::with_capacity(ops.len());
    let options = ops.get("$options");
    if options.is_some() && !ops.contains_key("$regex") {
        return Err(bad_operand(
            &path.key("$options"),
            "$options",
            "to accompany $regex",
        ));
    }
    for (op, arg) in ops {
        let here = path.key(op);
        let test = match op.as_str() {
            "$eq" => Test::Eq(literal(arg, &here, depth)?),
            "$ne" => Test::Ne(literal(arg, &here, depth)?),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let cmp = match op.as_str() {
                    "$gt" => CmpOp::Gt,
                    "$gte" => CmpOp::Gte,
                    "$lt" => CmpOp::Lt,
                    _ => CmpOp::Lte,
                };
                match arg {
                    // MongoDB: $gte/$lte null match null and missing; $gt/$lt null nothing.
                    Json::Null if matches!(cmp, CmpOp::Gte | CmpOp::Lte) => Test::Eq(Value::Null),
                    Json::Null => Test::In(Box::default()),
                    Json::Array(_) | Json::Object(_) => {
                        return Err(bad_operand(&here, op, "a number, string or boolean"));
                    }
                    scalar => Test::Cmp(cmp, Value::from(scalar)),
                }
            }
            "$in" | "$nin" => {
                let items = arg
                    .as_array()
                    .ok_or_else(|| bad_operand(&here, op, "an array"))?;
                let set = Box::new(lit_set(items, &here, depth)?);
                if op == "$in" {
                    Test::In(set)
                } else {
                    Test::Nin(set)
                }
            }
            "$exists" => Test::Exists(
                arg.as_bool()
                    .ok_or_else(|| bad_operand(&here, op, "true or false"))?,
            ),
            "$regex" => {
                let pattern = arg
                    .as_str()
                    .ok_or_else(|| bad_operand(&here, op, "a string"))?;
                Test::Regex(Box::new(compile_regex(pattern, options, path)?))
            }
            "$options" => continue,
            "$size" => {
                let n = arg
                    .as_u64()
                    .or_else(|| {
                        arg.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .ok_or_else(|| bad_operand(&here, op, "a non-negative integer"))?;
                Test::Size(usize::try_from(n).unwrap_or(usize::MAX))
            }
            "$all" => {
                let items = arg
                    .as_array()
                    .ok_or_else(|| bad_operand(&here, op, "an array"))?;
                let lits = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| literal(v, &here.index(i), depth))
                    .collect::<Result<Vec<_>, _>>()?;
                Test::All(lits.into_boxed_slice())
            }
            "$elemMatch" => {
                let inner = arg
                    .as_object()
                    .ok_or_else(|| bad_operand(&here, op, "an object"))?;
                // Logical operators make it a document query, as in MongoDB.
                let logical = inner
                    .keys()
                    .any(|k| matches!(k.as_str(), "$and" | "$or" | "$nor" | "$segment"));
                let em = if !logical && is_operator_object(arg).is_some() {
                    ElemMatch::Value(compile_operators(inner, &here, resolver, depth + 1)?)
                } else {
                    ElemMatch::Doc(compile_doc(inner, &here, resolver, depth + 1)?)
                };
                Test::ElemMatch(Box::new(em))
            }
            "$not" => {
                let inner = is_operator_object(arg)
                    .ok_or_else(|| bad_operand(&here, op, "an object of operators"))?;
                Test::Not(compile_operators(inner, &here, resolver, depth + 1)?)
            }
            "$vgt" | "$vgte" | "$vlt" | "$vlte" | "$veq" | "$vne" => {
                let text = arg
                    .as_str()
                    .ok_or_else(|| bad_operand(&here, op, "a version string"))?;
                let ver =
                    Box::new(parse_version(text).ok_or_else(|| {
                        CompileError::new(&here, ErrorKind::BadSemver(text.into()))
                    })?);
                match op.as_str() {
                    "$vgt" => Test::Version(VerOp::Cmp(CmpOp::Gt), ver),
                    "$vgte" => Test::Version(VerOp::Cmp(CmpOp::Gte), ver),
                    "$vlt" => Test::Version(VerOp::Cmp(CmpOp::Lt), ver),
                    "$vlte" => Test::Version(VerOp::Cmp(CmpOp::Lte), ver),
                    "$veq" => Test::Version(VerOp::Eq, ver),
                    _ => Test::VersionNe(ver),
                }
            }
            other if other.starts_with('$') => {
                return Err(CompileError::new(
                    &here,
                    ErrorKind::UnknownOperator(other.to_owned()),
                ));
            }
            field => {
                return Err(CompileError::new(
                    &here,
                    ErrorKind::Invalid(format!(
                        "{field:?} is not an operator: an object mixing operators and fields is ambiguous"
                    )),
                ));
            }
        };
        tests.push(test);
    }
    Ok(tests.into_boxed_slice())
}

fn lit_set(items: &[Json], path: &JsonPath, depth: usize) -> Result<LitSet, CompileError> {
    let mut set = LitSet::default();
    let mut strs: Vec<Box<str>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::Null => set.has_null = true,
            Json::Bool(true) => set.has_true = true,
            Json::Bool(false) => set.has_false = true,
            Json::Number(n) => set.nums.push(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => strs.push(s.as_str().into()),
            other => set.others.push(literal(other, &path.index(i), depth)?),
        }
    }
    set.strs = if strs.len() > HASH_SET_THRESHOLD {
        StrSet::Hashed(strs.into_iter().collect())
    } else {
        StrSet::Small(strs.into_boxed_slice())
    };
    Ok(set)
}

/// Largest compiled size a `$regex` may take; bigger patterns are refused.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn compile_regex(
    pattern: &str,
    options: Option<&Json>,
    path: &JsonPath,
) -> Result<Regex, CompileError> {
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT);
    if let Some(opts) = options {
        let opts_path = path.key("$options");
        let text = opts
            .as_str()
            .ok_or_else(|| bad_operand(&opts_path, "$options", "a string of i, m, s, x"))?;
        for c in text.chars() {
            match c {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                _ => {
                    return Err(bad_operand(
                        &opts_path,
                        "$options",
                        "a string of i, m, s, x",
                    ));
                }
            };
        }
    }
    builder
        .build()
        .map_err(|e| CompileError::new(&path.key("$regex"), ErrorKind::BadRegex(e.to_string())))
}
