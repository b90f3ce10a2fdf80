/**
 * Kafka's default partitioner for keyed records, so the embedded log and Kafka put every key
 * on the same partition and a deployment can move from one to the other without reordering
 * any stream.
 *
 * The Java client's `BuiltInPartitioner.partitionForKey` is
 * `Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`, with `murmur2` the 32-bit
 * MurmurHash2 of the serialized key (seed 0x9747b28c) and `toPositive(n) = n & 0x7fffffff`;
 * kafkajs's `DefaultPartitioner` (2.x, formerly `JavaCompatiblePartitioner`) computes the same.
 * Keys are serialized as UTF-8, like Kafka's `StringSerializer`.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/**
 * 32-bit MurmurHash2 exactly as `org.apache.kafka.common.utils.Utils.murmur2`, returned as the
 * signed Java `int`. `Math.imul` gives Java's wrapping 32-bit multiplication and `>>>` its
 * unsigned shift.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k =
      (data[i4] ?? 0) |
      ((data[i4 + 1] ?? 0) << 8) |
      ((data[i4 + 2] ?? 0) << 16) |
      ((data[i4 + 3] ?? 0) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // The Java switch on `length % 4` falls through from case 3 to case 1.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= (data[tail + 2] ?? 0) << 16;
    if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
    h ^= data[tail] ?? 0;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not `Math.abs`, which fails on MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner gives a record with this key. */
export function partitionForKey(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
  return toPositive(murmur2(Buffer.from(key, 'utf8'))) % partitions;
}
