/**
 * Test kits of the collector's stages, for the tests of packages built on it: an in-memory log
 * with the embedded log's semantics. Not part of the published API.
 */
export { MemoryLog } from './log/memory-log.testkit.js';
/** Small MaxMind DB files for tests (GeoIP without a shipped database). */
export { writeMmdb } from './sink/mmdb.testkit.js';
export type { MmdbNetwork, MmdbValue } from './sink/mmdb.testkit.js';
