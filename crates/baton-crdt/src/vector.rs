use crate::{Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Elements per block: the unit a delta ships. An add of `n` elements ships fewer than
/// `n + 2 * BLOCK`: 256 keeps a 1,000-element add to about 10 KiB (1024 shipped 16 KiB),
/// while a million-element vector is still only 4,096 blocks per replica.
pub const BLOCK: usize = 256;

/// A vector of numbers that replicas add into (for aggregations such as allreduce): each
/// replica's contribution is kept apart in versioned blocks, and the value is their sum. A
/// delta carries only the blocks an add touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddVector {
    replicas: BTreeMap<ReplicaId, BTreeMap<u32, Block>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Block {
    version: u64,
    values: Vec<f64>,
}

/// Why an add was refused; the vector is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VectorError {
    /// A value was NaN or infinite, which no sum could undo.
    NotFinite {
        /// Its index in the vector.
        index: usize,
    },
    /// The add reaches past the largest supported index.
    TooLong,
}

impl std::fmt::Display for VectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorError::NotFinite { index } => {
                write!(f, "value at index {index} is not a finite number")
            }
            VectorError::TooLong => write!(
                f,
                "the vector would exceed {} elements",
                u32::MAX as usize * BLOCK
            ),
        }
    }
}

impl std::error::Error for VectorError {}

impl AddVector {
    /// Adds `values` element-wise at `offset` as `replica`; returns the delta.
    pub fn add(
        &mut self,
        replica: ReplicaId,
        offset: usize,
        values: &[f64],
    ) -> Result<AddVector, VectorError> {
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(VectorError::NotFinite {
                index: offset + bad,
            });
        }
        let end = offset
            .checked_add(values.len())
            .ok_or(VectorError::TooLong)?;
        if end.div_ceil(BLOCK) > u32::MAX as usize {
            return Err(VectorError::TooLong);
        }
        let mine = self.replicas.entry(replica).or_default();
        let mut delta_blocks = BTreeMap::new();
        let mut index = offset;
        for value_chunk in chunks_by_block(offset, values) {
            let block_index = (index / BLOCK) as u32;
            let block = mine.entry(block_index).or_insert_with(|| Block {
                version: 0,
                values: vec![0.0; BLOCK],
            });
            let start = index % BLOCK;
            for (slot, value) in block.values[start..start + value_chunk.len()]
                .iter_mut()
                .zip(value_chunk)
            {
                *slot += value;
            }
            block.version += 1;
            delta_blocks.insert(block_index, block.clone());
            index += value_chunk.len();
        }
        Ok(AddVector {
            replicas: BTreeMap::from([(replica, delta_blocks)]),
        })
    }

    /// The summed elements `offset..offset + len` (absent elements are 0).
    pub fn get(&self, offset: usize, len: usize) -> Vec<f64> {
        let mut out = vec![0.0; len];
        self.for_each_slice(offset, len, |at, values| {
            for (slot, value) in out[at..at + values.len()].iter_mut().zip(values) {
                *slot += value;
            }
        });
        out
    }

    /// The sum of elements `offset..offset + len`, without materialising them.
    pub fn sum(&self, offset: usize, len: usize) -> f64 {
        let mut total = 0.0;
        self.for_each_slice(offset, len, |_, values| total += values.iter().sum::<f64>());
        total
    }

    /// Calls `each(position in the range, values)` for every stored run of elements that
    /// falls in `offset..offset + len`, replica by replica, block by block.
    fn for_each_slice(&self, offset: usize, len: usize, mut each: impl FnMut(usize, &[f64])) {
        let end = offset.saturating_add(len);
        if len == 0 {
            return;
        }
        let first = (offset / BLOCK) as u32;
        let last = u32::try_from((end - 1) / BLOCK).unwrap_or(u32::MAX);
        for blocks in self.replicas.values() {
            for (index, block) in blocks.range(first..=last) {
                let block_start = *index as usize * BLOCK;
                let from = offset.max(block_start);
                let to = end.min(block_start + BLOCK);
                each(
                    from - offset,
                    &block.values[from - block_start..to - block_start],
                );
            }
        }
    }

    /// One past the highest index any replica has added to, rounded up to a block.
    pub fn len(&self) -> usize {
        self.replicas
            .values()
            .filter_map(|b| b.keys().next_back())
            .map(|last| (*last as usize + 1) * BLOCK)
            .max()
            .unwrap_or(0)
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `values`, which start at `offset`, at block boundaries.
fn chunks_by_block(offset: usize, values: &[f64]) -> impl Iterator<Item = &[f64]> {
    let mut rest = values;
    let mut index = offset;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let room = BLOCK - index % BLOCK;
        let (head, tail) = rest.split_at(room.min(rest.len()));
        rest = tail;
        index += head.len();
        Some(head)
    })
}

impl Lattice for AddVector {
    fn join(&mut self, other: &Self) {
        for (replica, blocks) in &other.replicas {
            let mine = self.replicas.entry(*replica).or_default();
            for (index, block) in blocks {
                // One replica is the only writer of its blocks: the higher version has every add.
                match mine.get(index) {
                    Some(current) if current.version >= block.version => {}
                    _ => {
                        mine.insert(*index, block.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_across_blocks_and_replicas() {
        let (a, b) = (ReplicaId::new(1, 1), ReplicaId::new(2, 1));
        let mut x = AddVector::default();
        let delta = x.add(a, BLOCK - 2, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(delta.replicas[&a].len(), 2, "the add touched two blocks");
        let mut y = AddVector::default();
        let other = y.add(b, BLOCK - 1, &[10.0]).unwrap();
        x.join(&other);
        y.join(&delta);
        assert_eq!(x, y);
        assert_eq!(x.get(BLOCK - 3, 6), [0.0, 1.0, 12.0, 3.0, 4.0, 0.0]);
        assert_eq!(x.len(), 2 * BLOCK);
        assert_eq!(x.sum(BLOCK - 3, 6), 20.0);
        assert_eq!(x.sum(0, 10 * BLOCK), 20.0);
        assert_eq!(x.sum(BLOCK, 1), 3.0);
    }

    #[test]
    fn refuses_non_finite_values_and_stays_unchanged() {
        let mut x = AddVector::default();
        let error = x
            .add(ReplicaId::new(1, 1), 5, &[1.0, f64::NAN])
            .unwrap_err();
        assert_eq!(error, VectorError::NotFinite { index: 6 });
        assert!(x.is_empty());
    }
}
