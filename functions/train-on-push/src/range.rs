//! The commits of a merged range: reachable from the pull request's source commit and not from its merge base
//! (`git log base..tip`), walked through `GetCommit` newest first as Git walks a revision range, so that a branch
//! that merged `main` in does not drag `main`'s history into the range. Bounded: a range longer than the limit is
//! reported incomplete, never guessed.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use studio_ops_shared::AwsCallError;

use crate::ports::SourceRepository;

/// Steps the walk goes on once only excluded commits are queued (Git's `SLOP`).
const SLOP: u32 = 5;

/// Commits read at most for one range (a pull request of a few hundred commits is already unusual).
pub const MAX_COMMITS: usize = 1_000;

/// A range as walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Full commit ids in `base..tip`.
    pub commits: BTreeSet<String>,
    /// False when the walk stopped at the limit: `commits` is then a part of the range only.
    pub complete: bool,
}

impl Range {
    /// Whether `commit` (a full id, any case) is in the range.
    pub fn contains(&self, commit: &str) -> bool {
        self.commits.contains(&commit.to_ascii_lowercase())
    }
}

/// What the walk knows of one commit.
#[derive(Debug, Default)]
struct Seen {
    /// Reachable from the base: not in the range.
    excluded: bool,
    /// Taken from the queue and its parents queued.
    expanded: bool,
    /// Expanded while excluded: its parents carry the mark.
    propagated: bool,
}

/// The walk's state: what each commit is, what was read, what waits, newest first.
struct Walk<'a, S> {
    source: &'a S,
    repository: &'a str,
    limit: usize,
    seen: BTreeMap<String, Seen>,
    read: BTreeMap<String, (i64, Vec<String>)>,
    queue: BinaryHeap<(i64, String)>,
}

impl<S: SourceRepository> Walk<'_, S> {
    /// Queues a commit by its date, reading it first (Git knows a commit's date before it queues it, and so must
    /// we). False when the limit is reached.
    async fn push(&mut self, id: &str) -> Result<bool, AwsCallError> {
        if !self.read.contains_key(id) {
            if self.read.len() >= self.limit {
                return Ok(false);
            }
            let commit = self.source.commit(self.repository, id).await?;
            let parents = commit
                .parents
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect();
            // A commit without a date is read as the newest: read early, it can only make the walk longer.
            let date = commit.committed_at.unwrap_or(i64::MAX);
            self.read.insert(id.to_string(), (date, parents));
        }
        let date = self.read.get(id).map_or(i64::MAX, |(d, _)| *d);
        self.queue.push((date, id.to_string()));
        Ok(true)
    }

    /// Whether only commits reachable from the base are left: nothing more can join the range.
    fn only_excluded_left(&self) -> bool {
        self.queue
            .iter()
            .all(|(_, q)| self.seen.get(q).is_some_and(|s| s.excluded))
    }
}

/// `base..tip`: the commits reachable from `tip` and not from `base`, reading at most `limit` commits.
///
/// Git's algorithm: a queue ordered by commit date, newest first, the base marked excluded; marks flow to parents;
/// the walk ends when only excluded commits are left to expand. A skewed clock can end it early only in the way it
/// does Git's; the answer is never more than the commits reachable from `tip`.
pub async fn commits_between<S: SourceRepository>(
    source: &S,
    repository: &str,
    base: &str,
    tip: &str,
    limit: usize,
) -> Result<Range, AwsCallError> {
    let base = base.to_ascii_lowercase();
    let tip = tip.to_ascii_lowercase();
    let mut walk = Walk {
        source,
        repository,
        limit,
        seen: BTreeMap::new(),
        read: BTreeMap::new(),
        queue: BinaryHeap::new(),
    };
    walk.seen.entry(base.clone()).or_default().excluded = true;
    walk.seen.entry(tip.clone()).or_default();
    if !walk.push(&tip).await? || !walk.push(&base).await? {
        return Ok(finish(&walk.seen, false));
    }
    let mut slop = SLOP;
    while let Some((_, id)) = walk.queue.pop() {
        let state = walk.seen.entry(id.clone()).or_default();
        if state.expanded && (!state.excluded || state.propagated) {
            continue;
        }
        let excluded = state.excluded;
        state.expanded = true;
        state.propagated = excluded;
        let parents = walk
            .read
            .get(&id)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        for parent in parents {
            let p = walk.seen.entry(parent.clone()).or_default();
            let newly_excluded = excluded && !p.excluded;
            p.excluded |= excluded;
            if (!p.expanded || newly_excluded) && !walk.push(&parent).await? {
                return Ok(finish(&walk.seen, false));
            }
        }
        // Git's slop: a few more steps once only excluded commits are queued, so that a commit dated out of order
        // still gets its mark before the answer is read.
        if walk.only_excluded_left() {
            if slop == 0 {
                break;
            }
            slop -= 1;
        } else {
            slop = SLOP;
        }
    }
    Ok(finish(&walk.seen, true))
}

fn finish(seen: &BTreeMap<String, Seen>, complete: bool) -> Range {
    Range {
        commits: seen
            .iter()
            .filter(|(_, s)| s.expanded && !s.excluded)
            .map(|(id, _)| id.clone())
            .collect(),
        complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::FakeRepo;

    fn id(n: u32) -> String {
        format!("{n:040x}")
    }

    /// Commits 1..=n with parents and dates (the date is the number, unless given).
    fn graph(edges: &[(u32, &[u32])]) -> FakeRepo {
        let mut repo = FakeRepo::default();
        for (n, ps) in edges {
            let parents: Vec<String> = ps.iter().map(|p| id(*p)).collect();
            let refs: Vec<&str> = parents.iter().map(String::as_str).collect();
            repo.add(&id(*n), "c", Default::default());
            repo.link(&id(*n), &refs, i64::from(*n));
        }
        repo
    }

    async fn range(repo: &FakeRepo, base: u32, tip: u32) -> Range {
        commits_between(repo, "r", &id(base), &id(tip), MAX_COMMITS)
            .await
            .unwrap()
    }

    fn ids(ns: &[u32]) -> BTreeSet<String> {
        ns.iter().map(|n| id(*n)).collect()
    }

    #[tokio::test]
    async fn a_straight_branch_is_its_commits_after_the_base() {
        // 1 - 2 - 3 (main) ; 3 - 4 - 5 (experiment)
        let repo = graph(&[(1, &[]), (2, &[1]), (3, &[2]), (4, &[3]), (5, &[4])]);
        let r = range(&repo, 3, 5).await;
        assert_eq!(r.commits, ids(&[4, 5]));
        assert!(r.complete);
        assert!(r.contains(&id(4).to_uppercase()));
        assert!(!r.contains(&id(3)));
    }

    #[tokio::test]
    async fn a_branch_that_merged_main_in_does_not_bring_mains_history() {
        // main: 1 - 2 - 3 - 6 ; experiment forks at 2: 4 - 5, merges main (6) at 7, then 8.
        // The pull request's merge base is 6; the range is 4, 5, 7, 8 and never 1, 2, 3.
        let repo = graph(&[
            (1, &[]),
            (2, &[1]),
            (3, &[2]),
            (4, &[2]),
            (5, &[4]),
            (6, &[3]),
            (7, &[5, 6]),
            (8, &[7]),
        ]);
        let r = range(&repo, 6, 8).await;
        assert_eq!(r.commits, ids(&[4, 5, 7, 8]));
        assert!(r.complete);
    }

    #[tokio::test]
    async fn a_skewed_clock_reads_more_but_answers_the_same() {
        // 4 claims to be older than everything on main.
        let mut repo = graph(&[(1, &[]), (2, &[1]), (3, &[2]), (5, &[4])]);
        repo.add(&id(4), "c", Default::default());
        repo.link(&id(4), &[&id(3)], 0);
        let r = range(&repo, 3, 5).await;
        assert_eq!(r.commits, ids(&[4, 5]));
    }

    #[tokio::test]
    async fn a_range_longer_than_the_limit_is_incomplete() {
        let edges: Vec<(u32, Vec<u32>)> = (1..=50)
            .map(|n| (n, if n == 1 { vec![] } else { vec![n - 1] }))
            .collect();
        let borrowed: Vec<(u32, &[u32])> = edges.iter().map(|(n, p)| (*n, p.as_slice())).collect();
        let repo = graph(&borrowed);
        let r = commits_between(&repo, "r", &id(1), &id(50), 10)
            .await
            .unwrap();
        assert!(!r.complete);
        assert!(r.commits.len() <= 10);
        let whole = range(&repo, 1, 50).await;
        assert_eq!(whole.commits.len(), 49);
        assert!(whole.complete);
    }
}
