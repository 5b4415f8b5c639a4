use crate::{Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;

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

/// `BLOCK` finite numbers, one replica's contribution to one stretch of the vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BlockWire")]
struct Block {
    version: u64,
    #[serde(with = "f64_bytes")]
    values: Vec<f64>,
    /// `values.iter().sum()`, kept up to date, so the sum of a million elements reads a few
    /// thousand numbers: readers waiting for an allreduce sum on every change.
    #[serde(skip_serializing)]
    sum: f64,
}

/// A block as it travels and is stored; checked before it becomes a [`Block`], so a
/// malformed delta from a peer is refused at decoding rather than indexed out of bounds.
#[derive(Deserialize)]
struct BlockWire {
    version: u64,
    #[serde(with = "f64_bytes")]
    values: Vec<f64>,
}

impl TryFrom<BlockWire> for Block {
    type Error = String;

    fn try_from(wire: BlockWire) -> Result<Self, String> {
        if wire.values.len() != BLOCK {
            return Err(format!(
                "a vector block holds {BLOCK} numbers, this one {}",
                wire.values.len()
            ));
        }
        if wire.values.iter().any(|v| !v.is_finite()) {
            return Err("a vector block holds a number that is not finite".into());
        }
        Ok(Block {
            version: wire.version,
            sum: wire.values.iter().sum(),
            values: wire.values,
        })
    }
}

/// Numbers as one byte string of little-endian `f64`s in binary formats (bulk copies, where a
/// sequence costs a serializer call per element), a plain list in JSON.
mod f64_bytes {
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return values.serialize(serializer);
        }
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        if deserializer.is_human_readable() {
            return Vec::<f64>::deserialize(deserializer);
        }
        deserializer.deserialize_bytes(LittleEndian)
    }

    struct LittleEndian;

    impl Visitor<'_> for LittleEndian {
        type Value = Vec<f64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("little-endian f64s as bytes")
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<f64>, E> {
            let (numbers, rest) = bytes.as_chunks::<8>();
            if !rest.is_empty() {
                return Err(E::custom("f64 bytes: the length is not a multiple of 8"));
            }
            Ok(numbers.iter().map(|n| f64::from_le_bytes(*n)).collect())
        }
    }
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
                sum: 0.0,
            });
            let start = index % BLOCK;
            for (slot, value) in block.values[start..start + value_chunk.len()]
                .iter_mut()
                .zip(value_chunk)
            {
                *slot += value;
            }
            block.version += 1;
            block.sum = block.values.iter().sum();
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
        self.for_each_slice(offset, len, |at, block, range| {
            let values = &block.values[range];
            for (slot, value) in out[at..at + values.len()].iter_mut().zip(values) {
                *slot += value;
            }
        });
        out
    }

    /// The sum of elements `offset..offset + len`, without materialising them; a whole block
    /// counts by its kept sum.
    pub fn sum(&self, offset: usize, len: usize) -> f64 {
        let mut total = 0.0;
        self.for_each_slice(offset, len, |_, block, range| {
            total += if range.len() == BLOCK {
                block.sum
            } else {
                block.values[range].iter().sum::<f64>()
            }
        });
        total
    }

    /// Calls `each(position in the range, block, its elements in the range)` for every stored
    /// block that overlaps `offset..offset + len`, replica by replica, block by block.
    fn for_each_slice(
        &self,
        offset: usize,
        len: usize,
        mut each: impl FnMut(usize, &Block, Range<usize>),
    ) {
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
                each(from - offset, block, from - block_start..to - block_start);
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
    fn a_decoded_vector_sums_and_reads_as_the_encoded_one() {
        let mut x = AddVector::default();
        x.add(ReplicaId::new(1, 1), 3, &[0.5; 700]).unwrap();
        x.add(ReplicaId::new(2, 1), 100, &[-1.25; 300]).unwrap();
        let decoded: AddVector = crate::decode(&crate::encode(&x)).unwrap();
        assert_eq!(decoded, x);
        assert_eq!(decoded.sum(0, 2000), 700.0 * 0.5 - 300.0 * 1.25);
        assert_eq!(decoded.get(0, 2000), x.get(0, 2000));
        // Whole blocks count by their kept sum, partial ones element by element: the same.
        let by_element: f64 = x.get(0, 2000).iter().sum();
        assert_eq!(x.sum(0, 2000), by_element);
    }

    #[test]
    fn a_malformed_block_from_a_peer_is_refused_at_decoding() {
        // A vector with one block, whose numbers `spoil` then changes as a peer might.
        let encoded_after = |spoil: fn(&mut Vec<f64>)| {
            let replica = ReplicaId::new(1, 1);
            let mut x = AddVector::default();
            x.add(replica, 0, &[1.0]).unwrap();
            spoil(
                &mut x
                    .replicas
                    .get_mut(&replica)
                    .unwrap()
                    .get_mut(&0)
                    .unwrap()
                    .values,
            );
            crate::encode(&x)
        };
        let short = encoded_after(|values| values.truncate(10));
        assert!(crate::decode::<AddVector>(&short).is_err());
        let infinite = encoded_after(|values| values[5] = f64::INFINITY);
        assert!(crate::decode::<AddVector>(&infinite).is_err());
        let wire = BlockWire {
            version: 1,
            values: vec![1.0; 10],
        };
        let error = Block::try_from(wire).unwrap_err();
        assert!(error.contains("holds 256 numbers, this one 10"), "{error}");
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
