//! Acknowledgement bookkeeping of one stream: which delivered records the client has not
//! acknowledged yet, and so where the group's offset of each partition may be committed.
//!
//! The rule (the stream's at-least-once guarantee): per partition, the committed offset is the
//! lowest delivered offset not yet acknowledged, or one past the highest delivered offset when
//! every delivered record is acknowledged. A commit never passes a record the client has not
//! acknowledged.
//!
//! Noting a delivery costs O(1) (librdkafka hands out a partition's records in increasing
//! offset order, so they are appended), and so does finding the partition of a run of records
//! of the same partition, which is how records arrive.

// Counters of records held in memory and offsets read from Kafka: client offsets are only
// compared here, never computed with, so the arithmetic lint of the parent module is off.
#![allow(clippy::arithmetic_side_effects)]

use std::collections::{HashMap, VecDeque};

/// The delivered offsets of a partition that are waiting for their acknowledgement.
#[derive(Debug, Default)]
struct PendingOffsets {
    /// Delivered offsets in increasing order, each with whether it has been acknowledged. An
    /// acknowledged offset stays only while an earlier one is not: the front never is.
    entries: VecDeque<(i64, bool)>,
    /// How many of `entries` are acknowledged.
    acknowledged: usize,
}

impl PendingOffsets {
    fn len(&self) -> usize {
        self.entries.len() - self.acknowledged
    }

    /// The lowest pending offset.
    fn first(&self) -> Option<i64> {
        self.entries.front().map(|&(offset, _)| offset)
    }

    /// Where `offset` is in `entries`, if it is there.
    fn find(&self, offset: i64) -> Option<usize> {
        self.entries
            .binary_search_by_key(&offset, |&(offset, _)| offset)
            .ok()
    }

    fn contains(&self, offset: i64) -> bool {
        self.find(offset)
            .is_some_and(|index| !self.entries[index].1)
    }

    /// Adds a delivered offset; false when it was pending already.
    fn insert(&mut self, offset: i64) -> bool {
        match self.entries.back() {
            Some(&(last, _)) if last >= offset => {}
            _ => {
                self.entries.push_back((offset, false));
                return true;
            }
        }
        // Out of order (librdkafka does not do this; kept correct all the same).
        match self
            .entries
            .binary_search_by_key(&offset, |&(offset, _)| offset)
        {
            Ok(index) if self.entries[index].1 => {
                self.entries[index].1 = false;
                self.acknowledged -= 1;
                true
            }
            Ok(_) => false,
            Err(index) => {
                self.entries.insert(index, (offset, false));
                true
            }
        }
    }

    /// Acknowledges one offset; false when it was not pending.
    fn remove(&mut self, offset: i64) -> bool {
        let Some(index) = self.find(offset) else {
            return false;
        };
        if self.entries[index].1 {
            return false;
        }
        self.entries[index].1 = true;
        self.acknowledged += 1;
        self.drop_acknowledged_front();
        true
    }

    /// Acknowledges every pending offset at or below `offset`; returns how many there were.
    fn remove_up_to(&mut self, offset: i64) -> usize {
        let end = self
            .entries
            .partition_point(|&(pending, _)| pending <= offset);
        let acknowledged_before = self.entries.range(..end).filter(|entry| entry.1).count();
        self.entries.drain(..end);
        self.acknowledged -= acknowledged_before;
        self.drop_acknowledged_front();
        end - acknowledged_before
    }

    fn drop_acknowledged_front(&mut self) {
        while let Some(&(_, true)) = self.entries.front() {
            self.entries.pop_front();
            self.acknowledged -= 1;
        }
    }
}

/// Per partition: what was delivered and not acknowledged, and where commits stand.
#[derive(Debug)]
struct PartitionAcks {
    topic: String,
    partition: i32,
    pending: PendingOffsets,
    /// One past the highest delivered offset.
    next: i64,
    /// The first offset delivered: where the partition's position stood.
    baseline: i64,
    /// The last offset committed (or to be committed) by this stream, once an ack moved it.
    committed: Option<i64>,
}

impl PartitionAcks {
    /// The commit position after acknowledgements, when it moved: the lowest pending offset, or
    /// one past the highest delivered offset when nothing is pending.
    fn advance(&mut self) -> Option<i64> {
        let position = self.pending.first().unwrap_or(self.next);
        (position > self.committed.unwrap_or(self.baseline)).then(|| {
            self.committed = Some(position);
            position
        })
    }
}

/// Acknowledgement bookkeeping of one stream.
#[derive(Debug, Default)]
pub struct AckTracker {
    /// The partitions this stream delivered records of.
    partitions: Vec<PartitionAcks>,
    /// Topic -> partition -> index in `partitions` (keyed by topic first so that lookups borrow
    /// the topic name instead of copying it).
    index: HashMap<String, HashMap<i32, usize>>,
    /// The partition of the last delivery: the next one is most likely of the same.
    last_delivered: usize,
    /// Records delivered and not acknowledged, over all partitions.
    unacked: usize,
    /// Moves each time a partition is forgotten.
    generation: u64,
}

impl AckTracker {
    fn position_of(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(topic)?.get(&partition).copied()
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionAcks> {
        let position = self.position_of(topic, partition)?;
        Some(&mut self.partitions[position])
    }

    /// Notes a delivered record.
    pub fn delivered(&mut self, topic: &str, partition: i32, offset: i64) {
        let position = match self.partitions.get(self.last_delivered) {
            Some(last) if last.partition == partition && last.topic == topic => self.last_delivered,
            _ => match self.position_of(topic, partition) {
                Some(position) => position,
                None => {
                    self.partitions.push(PartitionAcks {
                        topic: topic.to_owned(),
                        partition,
                        pending: PendingOffsets::default(),
                        next: offset,
                        baseline: offset,
                        committed: None,
                    });
                    let position = self.partitions.len() - 1;
                    self.index
                        .entry(topic.to_owned())
                        .or_default()
                        .insert(partition, position);
                    position
                }
            },
        };
        self.last_delivered = position;
        let acks = &mut self.partitions[position];
        if acks.pending.insert(offset) {
            self.unacked += 1;
        }
        acks.next = acks.next.max(offset + 1);
    }

    /// Notes an acknowledgement; returns the offset to commit when the commit position moved.
    /// Acknowledging a record that is not pending (unknown, revoked, or acknowledged already)
    /// does nothing.
    pub fn ack(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let acks = self.partition_mut(topic, partition)?;
        if !acks.pending.remove(offset) {
            return None;
        }
        let position = acks.advance();
        self.unacked -= 1;
        position
    }

    /// Notes a cumulative acknowledgement of every pending record of a partition at or below
    /// `offset`; returns the offset to commit when the commit position moved.
    pub fn ack_up_to(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let acks = self.partition_mut(topic, partition)?;
        let acknowledged = acks.pending.remove_up_to(offset);
        if acknowledged == 0 {
            return None;
        }
        let position = acks.advance();
        self.unacked -= acknowledged;
        position
    }

    /// Records delivered and not acknowledged, over all partitions.
    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// Whether a delivered record is still waiting for its acknowledgement.
    pub fn is_pending(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.position_of(topic, partition)
            .is_some_and(|position| self.partitions[position].pending.contains(offset))
    }

    /// A number that moves each time a partition is forgotten.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets a partition (revoked, or sought).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.generation += 1;
        let Some(position) = self.position_of(topic, partition) else {
            return;
        };
        let forgotten = self.partitions.swap_remove(position);
        self.unacked -= forgotten.pending.len();
        if let Some(partitions) = self.index.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.index.remove(topic);
            }
        }
        // The last partition moved into the forgotten one's place.
        if let Some(moved) = self.partitions.get(position)
            && let Some(slot) = self
                .index
                .get_mut(&moved.topic)
                .and_then(|partitions| partitions.get_mut(&moved.partition))
        {
            *slot = position;
        }
    }

    /// Where the stream would resume a partition after a reconnect: its lowest unacknowledged
    /// delivered offset, else one past the last delivered one.
    pub fn resume_position(&self, topic: &str, partition: i32) -> Option<i64> {
        let acks = &self.partitions[self.position_of(topic, partition)?];
        Some(acks.pending.first().unwrap_or(acks.next))
    }

    /// The topics this stream delivered records of.
    pub fn topics(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    /// The commit positions this stream has reached.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|acks| {
                acks.committed
                    .map(|offset| (acks.topic.clone(), acks.partition, offset))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_past_contiguous_acknowledgements() {
        let mut tracker = AckTracker::default();
        for offset in [10, 11, 12] {
            tracker.delivered("t", 0, offset);
        }
        assert_eq!(tracker.unacked(), 3);
        // 11 acknowledged first: 10 is still pending, nothing to commit.
        assert_eq!(tracker.ack("t", 0, 11), None);
        // 10 acknowledged: 10 and 11 are done, commit at 12 (the next one to read).
        assert_eq!(tracker.ack("t", 0, 10), Some(12));
        assert_eq!(tracker.ack("t", 0, 12), Some(13));
        assert_eq!(tracker.unacked(), 0);
        // Unknown or repeated acks do nothing.
        assert_eq!(tracker.ack("t", 0, 12), None);
        assert_eq!(tracker.ack("t", 1, 0), None);
        assert_eq!(tracker.positions(), vec![("t".to_owned(), 0, 13)]);
    }

    #[test]
    fn gaps_in_offsets_do_not_block_commits() {
        let mut tracker = AckTracker::default();
        // Compaction or transaction markers leave gaps.
        tracker.delivered("t", 0, 5);
        tracker.delivered("t", 0, 9);
        assert_eq!(tracker.ack("t", 0, 9), None);
        assert_eq!(tracker.ack("t", 0, 5), Some(10));
    }

    #[test]
    fn cumulative_acks_take_every_pending_record_up_to_the_offset() {
        let mut tracker = AckTracker::default();
        for offset in 0..6 {
            tracker.delivered("t", 0, offset);
        }
        tracker.delivered("t", 1, 0);
        assert_eq!(tracker.ack("t", 0, 4), None);
        // 0..=2 acknowledged at once; 3 is still pending.
        assert_eq!(tracker.ack_up_to("t", 0, 2), Some(3));
        assert_eq!(tracker.unacked(), 3 + 1 - 1);
        // Nothing pending at or below 2 any more.
        assert_eq!(tracker.ack_up_to("t", 0, 2), None);
        // Past the last delivered offset: what was delivered, no more.
        assert_eq!(tracker.ack_up_to("t", 0, 100), Some(6));
        assert_eq!(tracker.unacked(), 1);
        assert_eq!(tracker.ack_up_to("t", 2, 100), None);
        assert_eq!(tracker.ack_up_to("u", 0, 100), None);
        // A record delivered later is not covered by an earlier cumulative ack.
        tracker.delivered("t", 0, 6);
        assert_eq!(tracker.unacked(), 2);
        assert_eq!(tracker.ack_up_to("t", 1, 0), Some(1));
        assert_eq!(tracker.ack_up_to("t", 0, 6), Some(7));
        assert_eq!(tracker.unacked(), 0);
        let mut positions = tracker.positions();
        positions.sort();
        assert_eq!(
            positions,
            vec![("t".to_owned(), 0, 7), ("t".to_owned(), 1, 1)]
        );
    }

    #[test]
    fn forgetting_a_partition_drops_its_pending_records() {
        let mut tracker = AckTracker::default();
        tracker.delivered("t", 0, 0);
        tracker.delivered("t", 1, 0);
        tracker.delivered("u", 0, 0);
        let generation = tracker.generation();
        assert!(tracker.is_pending("t", 0, 0));
        tracker.forget("t", 0);
        // Records taken before the forget and not sent yet are recognised as stale.
        assert_ne!(tracker.generation(), generation);
        assert!(!tracker.is_pending("t", 0, 0));
        assert!(tracker.is_pending("t", 1, 0));
        assert!(tracker.is_pending("u", 0, 0));
        assert_eq!(tracker.unacked(), 2);
        assert_eq!(tracker.ack("t", 0, 0), None);
        assert_eq!(tracker.ack("t", 1, 0), Some(1));
        // The partitions left are still found after the one before them went.
        tracker.delivered("u", 0, 1);
        assert_eq!(tracker.ack_up_to("u", 0, 1), Some(2));
        assert_eq!(tracker.unacked(), 0);
        tracker.forget("t", 1);
        tracker.forget("u", 0);
        assert!(tracker.topics().is_empty());
        // Delivered again after a forget: tracked from scratch.
        tracker.delivered("t", 0, 0);
        assert_eq!(tracker.resume_position("t", 0), Some(0));
        assert_eq!(tracker.ack("t", 0, 0), Some(1));
    }

    #[test]
    fn out_of_order_and_repeated_deliveries_keep_the_rule() {
        let mut tracker = AckTracker::default();
        for offset in [1, 3, 2, 2, 5] {
            tracker.delivered("t", 0, offset);
        }
        assert_eq!(tracker.unacked(), 4);
        assert_eq!(tracker.resume_position("t", 0), Some(1));
        assert_eq!(tracker.ack("t", 0, 3), None);
        assert_eq!(tracker.unacked(), 3);
        // 3 is acknowledged but held behind 1; delivered again, it is pending again.
        tracker.delivered("t", 0, 3);
        assert_eq!(tracker.unacked(), 4);
        assert_eq!(tracker.ack_up_to("t", 0, 2), Some(3));
        assert_eq!(tracker.ack("t", 0, 3), Some(5));
        assert_eq!(tracker.ack("t", 0, 5), Some(6));
        assert_eq!(tracker.unacked(), 0);
    }

    /// The bookkeeping against a plain model (a set of pending offsets per partition) over a
    /// long, deterministic mix of deliveries, acks, cumulative acks and forgets.
    #[test]
    fn agrees_with_a_set_of_pending_offsets() {
        use std::collections::{BTreeMap, BTreeSet};
        let mut tracker = AckTracker::default();
        let mut model: BTreeMap<i32, (BTreeSet<i64>, i64)> = BTreeMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..20_000 {
            let partition = random(3) as i32;
            let next = model.get(&partition).map_or(0, |(_, next)| *next);
            match random(10) {
                0..=4 => {
                    let offset = next + random(2) as i64;
                    tracker.delivered("t", partition, offset);
                    let entry = model.entry(partition).or_default();
                    entry.0.insert(offset);
                    entry.1 = offset + 1;
                }
                5 | 6 => {
                    let offset = next - 1 - random(8) as i64;
                    tracker.ack("t", partition, offset);
                    if let Some((pending, _)) = model.get_mut(&partition) {
                        pending.remove(&offset);
                    }
                }
                7 | 8 => {
                    let offset = next - random(8) as i64;
                    tracker.ack_up_to("t", partition, offset);
                    if let Some((pending, _)) = model.get_mut(&partition) {
                        pending.retain(|pending| *pending > offset);
                    }
                }
                _ => {
                    if random(20) == 0 {
                        tracker.forget("t", partition);
                        model.remove(&partition);
                    }
                }
            }
            let unacked: usize = model.values().map(|(pending, _)| pending.len()).sum();
            assert_eq!(tracker.unacked(), unacked);
            for (partition, (pending, next)) in &model {
                assert_eq!(
                    tracker.resume_position("t", *partition),
                    Some(pending.first().copied().unwrap_or(*next))
                );
            }
        }
    }
}
