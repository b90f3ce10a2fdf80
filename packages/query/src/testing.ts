/**
 * Test kits of the store, for the tests of packages built on it: a fresh chDB database per test
 * (or a ClickHouse server, with VIGIL_TEST_CLICKHOUSE_URL). Not part of the published API.
 */
export { openTestStore, storeNow } from './store/store.testkit.js';
export type { TestStore } from './store/store.testkit.js';
export { storeDetectEvents, inputId } from './detect/detect.testkit.js';
export type { DetectInput } from './detect/detect.testkit.js';
export { readmeVerifier } from './webhooks/readme-snippet.testkit.js';
export type { VerifyVigilSignature } from './webhooks/readme-snippet.testkit.js';
