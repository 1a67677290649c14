//! Who reads what in a distributed query. The coordinator's [`Layout`]: the ring's
//! members (the ingesters, as the front door names them), the worker of each, how many
//! tasks the read stage runs (a member's series split further by hash when it runs more
//! than one) and how many parts each task cuts its selection into. A worker's [`Shard`]:
//! the series of its task — those whose primary ingester on the ring is its member, and
//! of those its slice — so that every series is read exactly once, from the node that
//! received it first.

use strata_ring::{Ring, labels_hash};
use strata_storage::Labels;
use xxhash_rust::xxh3::xxh3_64;

/// The cluster a distributed query is planned for.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The ring's members (the ingesters' URLs, as `--distributor.ingester` gives them).
    pub members: Vec<String>,
    /// Tasks of the read stage: a multiple of the members.
    pub tasks: usize,
    /// Partitions (label-range parts) of each task's reads.
    pub parts: usize,
}

impl Layout {
    /// A layout over `members`: one task per member, two when there is a single member (a
    /// stage of one task would run on the coordinator itself), each cutting its reads into
    /// `parts` parts.
    pub fn new(members: Vec<String>, parts: usize) -> Layout {
        let tasks = if members.len() == 1 { 2 } else { members.len() };
        Layout {
            members,
            tasks,
            parts: parts.max(1),
        }
    }

    /// The member task `task` reads for.
    pub fn member_of(&self, task: usize) -> usize {
        task / tasks_per_member(self.tasks, self.members.len())
    }
}

/// Tasks per member when `tasks` tasks read for `members` members.
fn tasks_per_member(tasks: usize, members: usize) -> usize {
    (tasks / members.max(1)).max(1)
}

/// The series one task of a distributed query reads.
#[derive(Debug)]
pub struct Shard {
    ring: Ring,
    member: usize,
    slice: u64,
    slices: u64,
}

impl Shard {
    /// The shard of task `task` of `tasks` over the ring of `members`.
    pub fn new(members: &[String], tasks: usize, task: usize) -> Shard {
        let per = tasks_per_member(tasks, members.len());
        Shard {
            ring: Ring::new(members, 1),
            member: task / per,
            slice: (task % per) as u64,
            slices: per as u64,
        }
    }

    /// Whether the task reads the series `labels`.
    pub fn owns(&self, labels: &Labels) -> bool {
        let h = labels_hash(labels.iter().map(|l| (&*l.name, &*l.value)));
        if self.ring.primary(h) != Some(self.member) {
            return false;
        }
        self.slices <= 1 || xxh3_64(&h.to_le_bytes()) % self.slices == self.slice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string())])
    }

    #[test]
    fn every_series_is_read_by_exactly_one_task() {
        for members in [1usize, 2, 3, 5] {
            let urls: Vec<String> = (0..members).map(|i| format!("http://n{i}:9090")).collect();
            let layout = Layout::new(urls.clone(), 2);
            let shards: Vec<Shard> = (0..layout.tasks)
                .map(|t| Shard::new(&urls, layout.tasks, t))
                .collect();
            let mut per_task = vec![0usize; layout.tasks];
            for i in 0..3000 {
                let l = series(i);
                let owners: Vec<usize> =
                    (0..layout.tasks).filter(|&t| shards[t].owns(&l)).collect();
                assert_eq!(owners.len(), 1, "{members} members, series {i}: {owners:?}");
                per_task[owners[0]] += 1;
            }
            // Every task reads a share.
            assert!(
                per_task.iter().all(|&n| n > 3000 / layout.tasks / 3),
                "{per_task:?}"
            );
        }
    }

    #[test]
    fn the_task_of_a_member_reads_what_the_front_door_wrote_there_first() {
        let urls: Vec<String> = (0..3).map(|i| format!("http://n{i}:9090")).collect();
        let ring = Ring::new(&urls, 3);
        let mut owners = Vec::new();
        for i in 0..500 {
            let l = series(i);
            ring.owners(
                labels_hash(l.iter().map(|x| (&*x.name, &*x.value))),
                &mut owners,
            );
            assert!(Shard::new(&urls, 3, owners[0]).owns(&l));
        }
    }
}
