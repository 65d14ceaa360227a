//! The streaming template miner: a Drain-class fixed-depth prefix tree.
//!
//! A line is masked and split on whitespace; its token count picks the first
//! level of the tree and its leading tokens the next `depth - 3` levels (the
//! same depth convention as Drain, logparser and drain3). The leaf holds a
//! short list of clusters, and the line joins the most similar one when the
//! share of identical tokens reaches the similarity threshold; positions that
//! differ become `<*>`. Otherwise the line starts a new cluster with a fresh,
//! never reused id.
//!
//! Memory is bounded: at most `max_clusters` clusters are kept, the least
//! recently seen one is evicted first (an intrusive doubly linked list makes
//! that O(1)), tree nodes left empty by an eviction are pruned, and line
//! length and token count are capped before anything is stored.

use std::mem;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::hash::FxHashMap;
use crate::mask::{Mask, Masker};

/// The wildcard token of generalised template positions.
pub const WILDCARD: &str = "<*>";
/// The token that replaces the tail of a line with more than `max_tokens` tokens.
pub const TRUNCATED: &str = "<TRUNC>";

const NIL: u32 = u32::MAX;
const SNAPSHOT_VERSION: u32 = 1;

/// Settings of one miner.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// Tree depth in Drain's convention: root, token-count level, `depth - 3`
    /// leading-token levels, leaves. Values below 3 behave as 3.
    pub depth: usize,
    /// Share of identical tokens (wildcards excluded) needed to join a cluster.
    pub similarity_threshold: f64,
    /// Children per tree node before new leading tokens are routed to `<*>`.
    pub max_children: usize,
    /// Clusters kept; beyond it the least recently seen cluster is evicted.
    pub max_clusters: usize,
    /// Masks: regex masks first, in order, over the line; then built-in masks per token.
    pub masks: Vec<Mask>,
    /// Bytes of a line that are mined; the rest is ignored.
    pub max_line_len: usize,
    /// Tokens of a line that are mined; the rest is replaced by `<TRUNC>`.
    pub max_tokens: usize,
    /// Drain's original similarity, in which two identical masked tokens
    /// (`<IP>` and `<IP>`) count as matching tokens. By default such
    /// positions are left out of the comparison, so that two messages
    /// sharing only their variables and a few words are not merged.
    pub drain_similarity: bool,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            depth: 4,
            similarity_threshold: 0.6,
            max_children: 100,
            max_clusters: 10_000,
            masks: Mask::defaults(),
            max_line_len: 4096,
            max_tokens: 256,
            drain_similarity: false,
        }
    }
}

impl MinerConfig {
    fn levels(&self, token_count: usize) -> usize {
        self.depth.saturating_sub(3).min(token_count)
    }
}

/// A mined template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Stable id: never reused, kept across snapshot and restore.
    pub id: u64,
    /// Template text, tokens joined by single spaces, `<*>` at variable positions.
    pub text: String,
    /// Lines that matched the template.
    pub count: u64,
    /// Sequence number (1-based count of lines added to the miner) of the last match.
    pub last_seen: u64,
}

/// What [`TemplateMiner::add_line`] found for a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult {
    /// Id of the template the line belongs to.
    pub template_id: u64,
    /// The template's text after this line was merged into it.
    pub template: String,
    /// Whether this line created the template.
    pub is_new: bool,
    /// Lines matched by the template so far, this one included.
    pub count: u64,
}

/// The allocation-free part of a [`MatchResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMatch {
    /// Id of the template the line belongs to.
    pub template_id: u64,
    /// Whether this line created the template.
    pub is_new: bool,
    /// Lines matched by the template so far, this one included.
    pub count: u64,
}

#[derive(Debug)]
struct Node {
    parent: u32,
    key: Box<str>,
    token_count: u32,
    children: FxHashMap<Box<str>, u32>,
    clusters: Vec<u32>,
}

#[derive(Debug)]
struct Cluster {
    t: Template,
    /// End offset in `t.text` of each token.
    ends: Vec<u32>,
    leaf: u32,
    prev: u32,
    next: u32,
}

impl Cluster {
    fn token(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize + 1 };
        &self.t.text[start..self.ends[i] as usize]
    }
}

#[inline]
fn line_token<'a>(buf: &'a str, ends: &[u32], i: usize) -> &'a str {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &buf[start..ends[i] as usize]
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A streaming Drain-class template miner for one log stream.
#[derive(Debug)]
pub struct TemplateMiner {
    config: MinerConfig,
    masker: Masker,
    roots: FxHashMap<u32, u32>,
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    slots: Vec<Option<Cluster>>,
    free_slots: Vec<u32>,
    by_id: FxHashMap<u64, u32>,
    lru_head: u32,
    lru_tail: u32,
    live: usize,
    next_id: u64,
    seq: u64,
    buf: String,
    ends: Vec<u32>,
    /// Per token of the current line: whether it is a masked variable.
    vars: Vec<bool>,
    record_evictions: bool,
    evicted: Vec<Template>,
}

impl TemplateMiner {
    /// An empty miner.
    pub fn new(config: MinerConfig) -> Self {
        Self {
            masker: Masker::new(&config.masks),
            config,
            roots: FxHashMap::default(),
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: FxHashMap::default(),
            lru_head: NIL,
            lru_tail: NIL,
            live: 0,
            next_id: 1,
            seq: 0,
            buf: String::new(),
            ends: Vec::new(),
            vars: Vec::new(),
            record_evictions: false,
            evicted: Vec::new(),
        }
    }

    /// The miner's settings.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Mines one line and returns its template.
    pub fn add_line(&mut self, line: &str) -> MatchResult {
        let (slot, is_new) = self.ingest(line);
        let t = &self.cluster(slot).t;
        MatchResult {
            template_id: t.id,
            template: t.text.clone(),
            is_new,
            count: t.count,
        }
    }

    /// Mines one line without copying the template text out.
    pub fn add_line_id(&mut self, line: &str) -> LineMatch {
        let (slot, is_new) = self.ingest(line);
        let t = &self.cluster(slot).t;
        LineMatch {
            template_id: t.id,
            is_new,
            count: t.count,
        }
    }

    /// The template a line would match, without changing the miner.
    pub fn match_line(&mut self, line: &str) -> Option<&Template> {
        let line = truncate_str(line, self.config.max_line_len);
        let masked = self.masker.apply_regexes(line);
        let mut buf = mem::take(&mut self.buf);
        let mut ends = mem::take(&mut self.ends);
        self.masker
            .tokenize(&masked, self.config.max_tokens, &mut buf, &mut ends);
        self.mark_variables(&buf, &ends);
        let found = self.search(&buf, &ends);
        self.buf = buf;
        self.ends = ends;
        found.map(|(s, _)| &self.cluster(s).t)
    }

    /// The templates currently kept, in no particular order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.slots.iter().flatten().map(|c| &c.t)
    }

    /// The template with this id, unless it was evicted.
    pub fn get(&self, id: u64) -> Option<&Template> {
        self.by_id.get(&id).map(|&s| &self.cluster(s).t)
    }

    /// Number of templates kept.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no template is kept.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Lines added so far (including those before a restore).
    pub fn lines_seen(&self) -> u64 {
        self.seq
    }

    /// Keeps a copy of every evicted template until [`Self::take_evicted`].
    pub(crate) fn set_record_evictions(&mut self, on: bool) {
        self.record_evictions = on;
    }

    /// The templates evicted since the last call (only when recording).
    pub(crate) fn take_evicted(&mut self) -> Vec<Template> {
        mem::take(&mut self.evicted)
    }

    fn cluster(&self, slot: u32) -> &Cluster {
        match &self.slots[slot as usize] {
            Some(c) => c,
            // Slots handed out by the tree and the LRU list are always live.
            None => unreachable!("dangling cluster slot {slot}"),
        }
    }

    fn cluster_mut(&mut self, slot: u32) -> &mut Cluster {
        match &mut self.slots[slot as usize] {
            Some(c) => c,
            None => unreachable!("dangling cluster slot {slot}"),
        }
    }

    fn ingest(&mut self, line: &str) -> (u32, bool) {
        self.seq += 1;
        let line = truncate_str(line, self.config.max_line_len);
        let masked = self.masker.apply_regexes(line);
        let mut buf = mem::take(&mut self.buf);
        let mut ends = mem::take(&mut self.ends);
        self.masker
            .tokenize(&masked, self.config.max_tokens, &mut buf, &mut ends);
        self.mark_variables(&buf, &ends);
        let out = match self.search(&buf, &ends) {
            Some((slot, differs)) => {
                self.merge(slot, &buf, &ends, differs);
                self.touch(slot);
                (slot, false)
            }
            None => {
                let tokens: Vec<&str> = (0..ends.len()).map(|i| line_token(&buf, &ends, i)).collect();
                let id = self.next_id;
                self.next_id += 1;
                let slot = self.insert(id, &tokens, 1, self.seq, None);
                (slot, true)
            }
        };
        self.buf = buf;
        self.ends = ends;
        out
    }

    fn mark_variables(&mut self, buf: &str, ends: &[u32]) {
        self.vars.clear();
        if self.config.drain_similarity {
            return;
        }
        let mut start = 0;
        for &e in ends {
            let tok = &buf[start..e as usize];
            self.vars.push(tok.contains('<') && self.masker.is_variable(tok));
            start = e as usize;
        }
    }

    fn search(&self, buf: &str, ends: &[u32]) -> Option<(u32, bool)> {
        let n = ends.len();
        let mut node = *self.roots.get(&(n as u32))?;
        for i in 0..self.config.levels(n) {
            let children = &self.nodes[node as usize].children;
            node = match children.get(line_token(buf, ends, i)) {
                Some(&c) => c,
                None => *children.get(WILDCARD)?,
            };
        }
        self.fast_match(node, buf, ends)
    }

    /// The best cluster of a leaf, and whether the line differs from its
    /// template anywhere outside wildcards (so the template must change).
    fn fast_match(&self, leaf: u32, buf: &str, ends: &[u32]) -> Option<(u32, bool)> {
        let n = ends.len();
        let mut best = None;
        let mut best_sim = -1.0f64;
        let mut best_params = 0usize;
        for &slot in &self.nodes[leaf as usize].clusters {
            let c = self.cluster(slot);
            let sim = similarity(c, buf, ends, &self.vars);
            let compared = n - sim.skipped;
            let ratio = if compared == 0 {
                1.0
            } else {
                sim.same as f64 / compared as f64
            };
            if ratio > best_sim || (ratio == best_sim && sim.params > best_params) {
                best_sim = ratio;
                best_params = sim.params;
                best = Some((slot, sim.differs));
            }
        }
        best.filter(|_| best_sim >= self.config.similarity_threshold)
    }

    fn merge(&mut self, slot: u32, buf: &str, ends: &[u32], differs: bool) {
        let seq = self.seq;
        let c = self.cluster_mut(slot);
        c.t.count += 1;
        c.t.last_seen = seq;
        if !differs {
            return;
        }
        let mut text = String::with_capacity(c.t.text.len());
        let mut new_ends = Vec::with_capacity(ends.len());
        for i in 0..ends.len() {
            if i > 0 {
                text.push(' ');
            }
            let t = c.token(i);
            text.push_str(if t == line_token(buf, ends, i) { t } else { WILDCARD });
            new_ends.push(text.len() as u32);
        }
        c.t.text = text;
        c.ends = new_ends;
    }

    /// Adds a cluster; `path` is the stored tree path of a restored cluster.
    fn insert(&mut self, id: u64, tokens: &[&str], count: u64, last_seen: u64, path: Option<&[String]>) -> u32 {
        if self.live >= self.config.max_clusters.max(1) {
            self.evict_lru();
        }
        let mut text = String::new();
        let mut ends = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(t);
            ends.push(text.len() as u32);
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let leaf = match path {
            Some(p) => self.add_path(tokens.len(), p),
            None => self.add_to_tree(tokens),
        };
        self.nodes[leaf as usize].clusters.push(slot);
        self.slots[slot as usize] = Some(Cluster {
            t: Template {
                id,
                text,
                count,
                last_seen,
            },
            ends,
            leaf,
            prev: NIL,
            next: NIL,
        });
        self.push_front(slot);
        self.by_id.insert(id, slot);
        self.live += 1;
        slot
    }

    fn alloc_node(&mut self, parent: u32, key: &str, token_count: u32) -> u32 {
        let node = Node {
            parent,
            key: key.into(),
            token_count,
            children: FxHashMap::default(),
            clusters: Vec::new(),
        };
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn length_node(&mut self, n: usize) -> u32 {
        let n = n as u32;
        if let Some(&r) = self.roots.get(&n) {
            return r;
        }
        let r = self.alloc_node(NIL, "", n);
        self.roots.insert(n, r);
        r
    }

    fn child(&mut self, node: u32, key: &str) -> u32 {
        if let Some(&c) = self.nodes[node as usize].children.get(key) {
            return c;
        }
        let tc = self.nodes[node as usize].token_count;
        let c = self.alloc_node(node, key, tc);
        self.nodes[node as usize].children.insert(key.into(), c);
        c
    }

    /// Drain's insertion rule: tokens with digits and tokens past
    /// `max_children` go to the `<*>` child.
    fn add_to_tree(&mut self, tokens: &[&str]) -> u32 {
        let mut node = self.length_node(tokens.len());
        let max_children = self.config.max_children;
        for tok in tokens.iter().take(self.config.levels(tokens.len())) {
            let children = &self.nodes[node as usize].children;
            if let Some(&c) = children.get(*tok) {
                node = c;
                continue;
            }
            let has_wild = children.contains_key(WILDCARD);
            let len = children.len();
            let literal = !tok.bytes().any(|b| b.is_ascii_digit())
                && if has_wild {
                    len < max_children
                } else {
                    len + 1 < max_children
                };
            node = self.child(node, if literal { tok } else { WILDCARD });
        }
        node
    }

    fn add_path(&mut self, token_count: usize, path: &[String]) -> u32 {
        let mut node = self.length_node(token_count);
        for key in path {
            node = self.child(node, key);
        }
        node
    }

    fn path_of(&self, leaf: u32) -> Vec<String> {
        let mut path = Vec::new();
        let mut node = leaf;
        while node != NIL {
            let nd = &self.nodes[node as usize];
            if nd.parent == NIL {
                break;
            }
            path.push(nd.key.to_string());
            node = nd.parent;
        }
        path.reverse();
        path
    }

    fn push_front(&mut self, slot: u32) {
        let head = self.lru_head;
        {
            let c = self.cluster_mut(slot);
            c.prev = NIL;
            c.next = head;
        }
        if head != NIL {
            self.cluster_mut(head).prev = slot;
        } else {
            self.lru_tail = slot;
        }
        self.lru_head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let c = self.cluster(slot);
            (c.prev, c.next)
        };
        if prev != NIL {
            self.cluster_mut(prev).next = next;
        } else {
            self.lru_head = next;
        }
        if next != NIL {
            self.cluster_mut(next).prev = prev;
        } else {
            self.lru_tail = prev;
        }
    }

    fn touch(&mut self, slot: u32) {
        if self.lru_head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    fn evict_lru(&mut self) {
        let slot = self.lru_tail;
        if slot == NIL {
            return;
        }
        self.unlink(slot);
        let Some(c) = self.slots[slot as usize].take() else {
            return;
        };
        self.free_slots.push(slot);
        self.by_id.remove(&c.t.id);
        self.live -= 1;
        let leaf = &mut self.nodes[c.leaf as usize].clusters;
        if let Some(pos) = leaf.iter().position(|&s| s == slot) {
            leaf.remove(pos);
        }
        self.prune(c.leaf);
        if self.record_evictions {
            self.evicted.push(c.t);
        }
    }

    /// Frees nodes left without children or clusters, walking up to the root.
    fn prune(&mut self, mut node: u32) {
        while node != NIL {
            let nd = &self.nodes[node as usize];
            if !nd.children.is_empty() || !nd.clusters.is_empty() {
                return;
            }
            let parent = nd.parent;
            let key = mem::take(&mut self.nodes[node as usize].key);
            if parent == NIL {
                let tc = self.nodes[node as usize].token_count;
                self.roots.remove(&tc);
            } else {
                self.nodes[parent as usize].children.remove(&key);
            }
            let nd = &mut self.nodes[node as usize];
            nd.children = FxHashMap::default();
            nd.clusters = Vec::new();
            self.free_nodes.push(node);
            node = parent;
        }
    }

    /// Live tree nodes (for tests of the memory bound).
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len() - self.free_nodes.len()
    }

    /// Serialises templates, ids, counts, recency and tree paths.
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = self.snapshot_state();
        // Serialising plain strings and integers into memory cannot fail.
        serde_json::to_vec(&snap).unwrap_or_default()
    }

    pub(crate) fn snapshot_state(&self) -> Snapshot {
        let mut clusters = Vec::with_capacity(self.live);
        let mut slot = self.lru_tail;
        while slot != NIL {
            let c = self.cluster(slot);
            clusters.push(SnapCluster {
                id: c.t.id,
                count: c.t.count,
                last_seen: c.t.last_seen,
                tokens: (0..c.ends.len()).map(|i| c.token(i).to_owned()).collect(),
                path: self.path_of(c.leaf),
            });
            slot = c.prev;
        }
        Snapshot {
            version: SNAPSHOT_VERSION,
            depth: self.config.depth,
            next_id: self.next_id,
            seq: self.seq,
            clusters,
        }
    }

    /// Rebuilds a miner from [`Self::snapshot`] bytes; ids continue after the
    /// highest one stored. If `config` keeps fewer clusters than the snapshot,
    /// the least recently seen ones are dropped.
    pub fn restore(bytes: &[u8], config: MinerConfig) -> Result<Self, Error> {
        let snap: Snapshot = serde_json::from_slice(bytes)?;
        Self::restore_state(snap, config)
    }

    pub(crate) fn restore_state(snap: Snapshot, config: MinerConfig) -> Result<Self, Error> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(Error::Version(snap.version));
        }
        let mut m = TemplateMiner::new(config);
        let same_depth = snap.depth == m.config.depth;
        let mut max_id = 0;
        let mut seen = FxHashMap::default();
        for c in &snap.clusters {
            if seen.insert(c.id, ()).is_some() {
                return Err(Error::Invalid(format!("duplicate template id {}", c.id)));
            }
            if c.id == 0 {
                return Err(Error::Invalid("template id 0".into()));
            }
            max_id = max_id.max(c.id);
            let tokens: Vec<&str> = c.tokens.iter().map(String::as_str).collect();
            let path = (same_depth && c.path.len() == m.config.levels(tokens.len())).then_some(c.path.as_slice());
            m.insert(c.id, &tokens, c.count, c.last_seen, path);
        }
        m.next_id = snap.next_id.max(max_id + 1);
        m.seq = snap.seq;
        Ok(m)
    }
}

/// How a line compares with a template.
struct Similarity {
    /// Identical tokens (masked variables excluded unless Drain's similarity is used).
    same: usize,
    /// Template wildcards facing literal tokens.
    params: usize,
    /// Positions left out of the comparison: both sides are variables.
    skipped: usize,
    /// Whether some non-wildcard template token differs from the line.
    differs: bool,
}

/// Compares a line with a template (`vars` is empty under Drain's similarity).
fn similarity(c: &Cluster, buf: &str, ends: &[u32], vars: &[bool]) -> Similarity {
    let tb = c.t.text.as_bytes();
    let lb = buf.as_bytes();
    let mut sim = Similarity {
        same: 0,
        params: 0,
        skipped: 0,
        differs: false,
    };
    let mut ts = 0usize;
    let mut ls = 0usize;
    for (i, (&te, &le)) in c.ends.iter().zip(ends).enumerate() {
        let tt = &tb[ts..te as usize];
        let var = vars.get(i).copied().unwrap_or(false);
        if tt == WILDCARD.as_bytes() {
            // A wildcard facing a masked variable: both say "variable here".
            if var {
                sim.skipped += 1;
            } else {
                sim.params += 1;
            }
        } else if tt == &lb[ls..le as usize] {
            if var {
                sim.skipped += 1;
            } else {
                sim.same += 1;
            }
        } else {
            sim.differs = true;
        }
        ts = te as usize + 1;
        ls = le as usize;
    }
    sim
}

/// The persisted form of a miner.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    version: u32,
    depth: usize,
    next_id: u64,
    seq: u64,
    /// Least recently seen first.
    clusters: Vec<SnapCluster>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapCluster {
    id: u64,
    count: u64,
    last_seen: u64,
    tokens: Vec<String>,
    path: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskKind;

    fn miner() -> TemplateMiner {
        TemplateMiner::new(MinerConfig::default())
    }

    #[test]
    fn merges_lines_into_a_template() {
        let mut m = miner();
        let a = m.add_line("Connection to db-primary timed out after 30 ms");
        assert!(a.is_new);
        assert_eq!(a.template, "Connection to db-primary timed out after <NUM> ms");
        let b = m.add_line("Connection to cache-7 timed out after 4500 ms");
        assert!(!b.is_new);
        assert_eq!(b.template_id, a.template_id);
        assert_eq!(b.template, "Connection to <*> timed out after <NUM> ms");
        assert_eq!(b.count, 2);
        let c = m.add_line("User alice logged in");
        assert!(c.is_new);
        assert_ne!(c.template_id, a.template_id);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(a.template_id).map(|t| t.count), Some(2));
        assert_eq!(
            m.match_line("Connection to x timed out after 1 ms").map(|t| t.id),
            Some(a.template_id)
        );
        assert_eq!(m.lines_seen(), 3);
    }

    #[test]
    fn different_lengths_and_dissimilar_lines_stay_apart() {
        let mut m = miner();
        let a = m.add_line("disk full on volume data").template_id;
        let b = m.add_line("disk full on volume data now").template_id;
        let c = m.add_line("cache miss for key user").template_id;
        assert_ne!(a, b);
        assert_ne!(a, c);
        // Same first token, below the threshold of 0.5 identical tokens.
        let d = m.add_line("disk write to sda failed").template_id;
        assert_ne!(a, d);
    }

    #[test]
    fn shared_variables_alone_do_not_merge_messages() {
        let lines = [
            "Received disconnect from 10.0.0.1: 11: Bye Bye [preauth]",
            "Received disconnect from 10.0.0.2: 11: Bye Bye [preauth]",
            "Received disconnect from 10.0.0.3: 11: disconnected by user",
        ];
        let mut m = miner();
        let ids: Vec<u64> = lines.iter().map(|l| m.add_line(l).template_id).collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        // Drain's similarity counts the identical `<IP>:` and `<NUM>:` as matches: 5/8 >= 0.6.
        let mut classic = TemplateMiner::new(MinerConfig {
            drain_similarity: true,
            ..MinerConfig::default()
        });
        let ids: Vec<u64> = lines.iter().map(|l| classic.add_line(l).template_id).collect();
        assert_eq!(ids[0], ids[2]);
    }

    #[test]
    fn lines_of_mostly_masked_tokens_merge() {
        let cfg = MinerConfig {
            masks: vec![
                Mask::regex(r"blk_-?\d+", "<*>").unwrap(),
                Mask::builtin(MaskKind::Ip, "<IP>"),
            ],
            ..MinerConfig::default()
        };
        let mut m = TemplateMiner::new(cfg);
        let a = m.add_line("ask 10.0.0.1:50010 to delete blk_1 blk_2 blk_3 blk_4 blk_5 blk_6");
        let b = m.add_line("ask 10.0.0.2:50010 to delete blk_7 blk_8 blk_9 blk_10 blk_11 blk_12");
        let c = m.add_line("ask 10.0.0.3:50010 to delete blk_13 blk_14 blk_15 blk_16 blk_17 blk_18");
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(b.template_id, c.template_id);
    }

    #[test]
    fn ids_are_stable_and_never_reused() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_clusters: 2,
            ..MinerConfig::default()
        });
        let a = m.add_line("alpha one").template_id;
        let b = m.add_line("beta two three").template_id;
        assert_eq!(m.add_line("alpha one").template_id, a);
        let c = m.add_line("gamma four five six").template_id; // evicts beta
        assert!(m.get(b).is_none());
        let b2 = m.add_line("beta two three").template_id; // evicts alpha
        assert!(b2 > c && c > b && b > a);
        assert_eq!(m.len(), 2);
        assert!(m.get(a).is_none());
    }

    #[test]
    fn lru_eviction_keeps_recently_seen() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_clusters: 3,
            ..MinerConfig::default()
        });
        let hot = m.add_line("heartbeat ok").template_id;
        for w in ["one", "two", "three", "four", "five"] {
            m.add_line(&format!("unique {w} {w} {w}"));
            m.add_line("heartbeat ok");
        }
        assert_eq!(m.len(), 3);
        assert!(m.get(hot).is_some());
        assert_eq!(m.get(hot).map(|t| t.count), Some(6));
    }

    #[test]
    fn storm_of_unique_lines_is_bounded() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_clusters: 500,
            ..MinerConfig::default()
        });
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut word = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = rng;
            (0..6)
                .map(|i| (b'a' + ((n >> (i * 5)) % 26) as u8) as char)
                .collect::<String>()
        };
        let mut peak_nodes = 0;
        for i in 0..30_000 {
            let len = 1 + i % 40;
            let line: Vec<String> = (0..len).map(|_| word()).collect();
            m.add_line(&line.join(" "));
            assert!(m.len() <= 500);
            peak_nodes = peak_nodes.max(m.node_count());
        }
        assert_eq!(m.len(), 500);
        // Tree nodes are pruned with their clusters: bounded by clusters x levels + length nodes.
        assert!(peak_nodes <= 500 * 2 + 40, "{peak_nodes}");
        assert!(m.slots.len() <= 500);
    }

    #[test]
    fn snapshot_round_trip_keeps_ids_counts_and_continues_ids() {
        let mut m = miner();
        let a = m.add_line("Connection to db1 timed out after 30 ms");
        m.add_line("Connection to db2 timed out after 31 ms");
        let b = m.add_line("worker 3 started with pid 99");
        let bytes = m.snapshot();
        let mut r = TemplateMiner::restore(&bytes, MinerConfig::default()).unwrap();
        assert_eq!(r.len(), 2);
        let mut orig: Vec<Template> = m.templates().cloned().collect();
        let mut back: Vec<Template> = r.templates().cloned().collect();
        orig.sort_by_key(|t| t.id);
        back.sort_by_key(|t| t.id);
        assert_eq!(orig, back);
        assert_eq!(r.lines_seen(), 3);
        let again = r.add_line("Connection to db9 timed out after 5 ms");
        assert_eq!(again.template_id, a.template_id);
        assert_eq!(again.count, 3);
        assert!(!again.is_new);
        let new = r.add_line("a completely different line");
        assert!(new.template_id > b.template_id);
        // Restoring into a smaller cap keeps the most recently seen templates.
        let r2 = TemplateMiner::restore(
            &r.snapshot(),
            MinerConfig {
                max_clusters: 2,
                ..MinerConfig::default()
            },
        )
        .unwrap();
        assert_eq!(r2.len(), 2);
        assert!(r2.get(b.template_id).is_none());
        // Ids continue after restore even when the newest template was evicted before the snapshot.
        let mut r3 = TemplateMiner::restore(&r2.snapshot(), MinerConfig::default()).unwrap();
        assert!(r3.add_line("yet another shape of line here").template_id > new.template_id);
    }

    #[test]
    fn restore_with_another_depth_rebuilds_the_tree() {
        let mut m = miner();
        let a = m.add_line("Connection to db1 timed out after 30 ms").template_id;
        let cfg = MinerConfig {
            depth: 6,
            ..MinerConfig::default()
        };
        let mut r = TemplateMiner::restore(&m.snapshot(), cfg).unwrap();
        assert_eq!(r.add_line("Connection to db1 timed out after 45 ms").template_id, a);
    }

    #[test]
    fn restore_rejects_bad_snapshots() {
        assert!(matches!(
            TemplateMiner::restore(b"not json", MinerConfig::default()),
            Err(Error::Json(_))
        ));
        let bad = br#"{"version":99,"depth":4,"next_id":1,"seq":0,"clusters":[]}"#;
        assert!(matches!(
            TemplateMiner::restore(bad, MinerConfig::default()),
            Err(Error::Version(99))
        ));
        let dup = br#"{"version":1,"depth":4,"next_id":3,"seq":2,"clusters":[
            {"id":1,"count":1,"last_seen":1,"tokens":["a"],"path":["a"]},
            {"id":1,"count":1,"last_seen":2,"tokens":["b"],"path":["b"]}]}"#;
        assert!(matches!(
            TemplateMiner::restore(dup, MinerConfig::default()),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn regex_masks_make_wildcards() {
        let cfg = MinerConfig {
            masks: vec![
                Mask::regex(r"blk_-?\d+", "<*>").unwrap(),
                Mask::builtin(MaskKind::Number, "<NUM>"),
            ],
            ..MinerConfig::default()
        };
        let mut m = TemplateMiner::new(cfg);
        let a = m.add_line("Verification succeeded for blk_-42");
        assert_eq!(a.template, "Verification succeeded for <*>");
        assert_eq!(
            m.add_line("Verification succeeded for blk_77").template_id,
            a.template_id
        );
    }

    #[test]
    fn garbage_huge_lines_and_many_tokens_do_not_panic() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_line_len: 10_000,
            max_tokens: 64,
            ..MinerConfig::default()
        });
        let garbage: String = (0u32..5000)
            .filter_map(|i| char::from_u32((i * 7919) % 0x11_0000))
            .collect();
        m.add_line(&garbage);
        m.add_line("");
        m.add_line("   \t  ");
        m.add_line("\u{fffd}\u{fffd} \0\0\0 \u{1b}[31m");
        let huge = "x".repeat(5_000_000);
        let r = m.add_line(&huge);
        assert!(r.template.len() <= 10_000);
        let many = "tok ".repeat(100_000);
        let r = m.add_line(&many);
        assert!(r.template.ends_with(TRUNCATED));
        assert_eq!(r.template.split(' ').count(), 64);
        // A multi-byte character cut by the length cap.
        let cut = format!("{}é", "a".repeat(9_999));
        m.add_line(&cut);
        let digits = "1".repeat(100_000);
        m.add_line(&digits);
        let dots = "1.".repeat(50_000);
        m.add_line(&dots);
        assert!(m.len() >= 5);
    }

    #[test]
    fn random_bytes_do_not_panic() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_clusters: 200,
            ..MinerConfig::default()
        });
        let mut rng = 0x1234_5678_9abc_def1u64;
        let alphabet: &[u8] = b"0123456789abcdefx.:-+/<>*[]()_ =\t\xc3\xa9\xff\x00";
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut r = rng;
            for _ in 0..(rng % 64) {
                bytes.push(alphabet[(r % alphabet.len() as u64) as usize]);
                r = r.rotate_right(5) ^ 0x9e37_79b9;
            }
            let line = String::from_utf8_lossy(&bytes);
            let res = m.add_line(&line);
            assert!(m.get(res.template_id).is_some());
        }
        assert!(m.len() <= 200);
        let back = TemplateMiner::restore(&m.snapshot(), m.config().clone()).unwrap();
        assert_eq!(back.len(), m.len());
    }

    #[test]
    fn max_children_routes_extra_tokens_to_wildcard() {
        let mut m = TemplateMiner::new(MinerConfig {
            max_children: 3,
            ..MinerConfig::default()
        });
        for w in ["apple", "banana", "cherry", "damson", "elder"] {
            m.add_line(&format!("{w} is ripe today"));
        }
        // Everything still mined; later first tokens share the `<*>` branch and merge there.
        assert!(m.len() >= 3);
        let first_children = m.nodes[m.roots[&4] as usize].children.len();
        assert!(first_children <= 3);
    }
}
