//! Server-side assignors: `uniform` (Kafka's default) and `range`.
//!
//! Both are pure functions of the members' subscriptions, the topics that exist and (for
//! `uniform`) the previous target, so the same inputs always give the same target.
//! Invariant: every partition of a subscribed topic goes to exactly one member subscribed to
//! that topic, when there is one.

use std::collections::{BTreeMap, BTreeSet};

use runnel_protocol::codec::Uuid;

use super::Assignment;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// What an assignor sees of one member.
pub struct MemberSpec<'a> {
    pub subscribed: BTreeSet<Uuid>,
    pub previous: Option<&'a Assignment>,
}

/// Runs the named assignor (unknown names fall back to `uniform`; names are checked before).
pub fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSpec<'_>>,
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range(members, partitions)
    } else {
        uniform(members, partitions)
    }
}

/// Per topic, members subscribed to it (by member id) get contiguous ranges; the first
/// `partitions % members` get one more.
fn range(members: &BTreeMap<String, MemberSpec<'_>>, partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|id| (id.clone(), Assignment::new())).collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(id, _)| id)
            .collect();
        let n = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        if n == 0 || count <= 0 {
            continue;
        }
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribers.into_iter().enumerate() {
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            let take = base + i32::from(i < extra);
            if take > 0 {
                if let Some(a) = out.get_mut(id) {
                    a.entry(*topic).or_default().extend(next..next + take);
                }
            }
            next += take;
        }
    }
    out
}

/// Balanced and sticky: members keep what they had (up to their fair share), the rest goes to
/// the least-loaded eligible member (ties by member id).
fn uniform(
    members: &BTreeMap<String, MemberSpec<'_>>,
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|id| (id.clone(), Assignment::new())).collect();
    let mut counts: BTreeMap<&String, usize> = members.keys().map(|id| (id, 0)).collect();
    let all: Vec<(Uuid, i32)> = partitions
        .iter()
        .filter(|(t, _)| members.values().any(|m| m.subscribed.contains(t)))
        .flat_map(|(t, &n)| (0..n.max(0)).map(move |p| (*t, p)))
        .collect();
    let active = members.values().filter(|m| !m.subscribed.is_empty()).count().max(1);
    let base = all.len() / active;
    let mut extra = all.len() % active;
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let valid =
        |m: &MemberSpec<'_>, t: &Uuid, p: i32| m.subscribed.contains(t) && partitions.get(t).is_some_and(|&n| p < n);
    // Keep previous partitions: first up to `base`, then one more for at most `extra` members.
    for pass in 0..2 {
        for (id, m) in members {
            let Some(prev) = m.previous else { continue };
            for (t, ps) in prev {
                for &p in ps {
                    let count = counts.get(id).copied().unwrap_or(0);
                    let limit = if pass == 0 { base } else { base + 1 };
                    if count >= limit || (pass == 1 && (count < base || extra == 0)) {
                        continue;
                    }
                    if !valid(m, t, p) || taken.contains(&(*t, p)) {
                        continue;
                    }
                    taken.insert((*t, p));
                    out.entry(id.clone()).or_default().entry(*t).or_default().insert(p);
                    counts.insert(id, count + 1);
                    if pass == 1 {
                        extra -= 1;
                    }
                }
            }
        }
    }
    // Everything else to the least-loaded subscriber.
    for (t, p) in all {
        if taken.contains(&(t, p)) {
            continue;
        }
        let best = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(&t))
            .min_by_key(|(id, _)| (counts.get(id).copied().unwrap_or(0), (*id).clone()))
            .map(|(id, _)| id);
        let Some(id) = best else { continue };
        out.entry(id.clone()).or_default().entry(t).or_default().insert(p);
        if let Some(c) = counts.get_mut(id) {
            *c += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(topics: &[Uuid], previous: Option<&'a Assignment>) -> MemberSpec<'a> {
        MemberSpec {
            subscribed: topics.iter().copied().collect(),
            previous,
        }
    }

    fn sizes(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
        a.values().map(|x| x.values().map(BTreeSet::len).sum()).collect()
    }

    #[test]
    fn range_splits_contiguously() {
        let t = Uuid([1; 16]);
        let members: BTreeMap<String, MemberSpec<'_>> = [("a", spec(&[t], None)), ("b", spec(&[t], None))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let out = range(&members, &BTreeMap::from([(t, 5)]));
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let t = Uuid([1; 16]);
        let one: BTreeMap<String, MemberSpec<'_>> = [("a".to_string(), spec(&[t], None))].into_iter().collect();
        let parts = BTreeMap::from([(t, 6)]);
        let first = uniform(&one, &parts);
        assert_eq!(sizes(&first), vec![6]);
        let prev_a = first["a"].clone();
        let three: BTreeMap<String, MemberSpec<'_>> = [
            ("a".to_string(), spec(&[t], Some(&prev_a))),
            ("b".to_string(), spec(&[t], None)),
            ("c".to_string(), spec(&[t], None)),
        ]
        .into_iter()
        .collect();
        let second = uniform(&three, &parts);
        assert_eq!(sizes(&second), vec![2, 2, 2]);
        // `a` keeps two of the partitions it had.
        assert!(second["a"][&t].is_subset(&prev_a[&t]));
    }
}
