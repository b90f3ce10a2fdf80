import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH, type EventInput } from '@vigil/protocol';
import { builtinRules, DetectionEngine, type Alert, type AlertUpdate } from '@vigil/detect';
import {
  kafkaTestsSkipped,
  startKafkaMock,
  uniqueKafkaName,
  type KafkaMock,
} from '../../../../../test/helpers/kafka.js';
import { encodeEventMessage, type EventMessage } from '../../log/event-message.js';
import type { ConsumedRecord } from '../../log/log.js';
import type { KafkaLog } from '../../log/kafka/kafka-log.js';
import { openTestLog, waitFor } from '../../log/kafka/kafka.testkit.js';
import { FileCheckpointStore } from '../checkpoint.js';
import { DetectionReader } from '../events.js';
import { EngineStage, partitionCheckpointName, type PartitionCheckpoint } from './engine-stage.js';
import { RekeyStage } from './rekey-stage.js';
import { overridesFor, RekeyRouter, rekeySets } from './route.js';

/*
 * The detector's Kafka re-key on librdkafka's mock broker: stage 1 (log → re-key topic keyed by
 * (tenant, entity)) and stage 2 (engines per re-key partition), against one engine fed the same
 * events in log order, as the embedded detector runs.
 */

const PARTITIONS = 4;
const LATENESS_MS = 60_000;
const silent = { info() {}, warn() {}, error() {} };
const salts = randomSaltSource();
const RULES = builtinRules();
const SETS = new Map(rekeySets(RULES).map((s) => [s.id, s]));
const BASE = Date.UTC(2030, 0, 7, 9, 0, 0);
// One log and re-key topic per test: a new group reads its topic from the start.
const topics = [uniqueKafkaName('vigil-events'), uniqueKafkaName('vigil-events')];
const dir = mkdtempSync(join(tmpdir(), 'vigil-rekey-'));

let mock: KafkaMock;
let log: KafkaLog;
let rekey: KafkaLog;
let rekeyTopic: string;
const opened: KafkaLog[] = [];
const running: { stop(): Promise<void> }[] = [];
/** Event messages run by every engine member so far (their batch reports). */
let engineEvents = 0;
/** Every record appended to the log, in append order, for the reference engine. */
const appended: ConsumedRecord[] = [];

beforeAll(async () => {
  mock = await startKafkaMock({
    topics: topics.flatMap((name) => [
      { name, partitions: PARTITIONS },
      { name: `${name}.detect`, partitions: PARTITIONS },
    ]),
  });
}, 30_000);

async function useTopics(n: number): Promise<void> {
  const topic = topics[n] as string;
  rekeyTopic = `${topic}.detect`;
  log = await openTestLog(mock.brokers, topic, PARTITIONS);
  rekey = await openTestLog(mock.brokers, rekeyTopic, PARTITIONS);
  opened.push(log, rekey);
}

afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

afterAll(async () => {
  for (const l of opened) await l.close();
  await mock?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let nextId = 0;
const chains = new Map<string, { seq: number; prev: string }>();

/** Appends `inputs` as one sealed record on stream `stream` of `tenant`. */
async function append(tenant: string, stream: string, inputs: Omit<EventInput, 'id'>[]) {
  const chain = chains.get(`${tenant}/${stream}`) ?? { seq: 0, prev: ZERO_HASH };
  const events = inputs.map((input) => {
    const e = sealEvent(
      {
        ...input,
        id: `0193a4b2-6c1e-7000-8000-${String(++nextId).padStart(12, '0')}`,
      } as EventInput & {
        id: string;
        time: string;
      },
      { stream, seq: chain.seq, prev: chain.prev },
      salts,
    ).event;
    chain.seq++;
    chain.prev = e.hash;
    return e;
  });
  chains.set(`${tenant}/${stream}`, chain);
  const message: EventMessage = {
    v: 2,
    tenant,
    keyId: 'k1',
    receivedAt: BASE + 86_400_000,
    backfillBefore: BASE - 86_400_000,
    stream,
    kind: 'sealed',
    events,
  };
  const key = `${tenant}/${stream}`;
  const value = encodeEventMessage(message);
  const [position] = await log.append([{ key, value }]);
  appended.push({
    ...(position as { partition: number; offset: number }),
    key,
    value,
    timestamp: 0,
  });
}

function failure(account: string, at: number): Omit<EventInput, 'id'> {
  return {
    time: new Date(at).toISOString(),
    action: 'user.login',
    category: 'authentication',
    outcome: 'failure',
    actor: { type: 'user', id: account },
    context: { ip: '81.2.69.10' },
  };
}

function stage1(group: string, instance: string): RekeyStage {
  const stage = new RekeyStage({
    log,
    rekey,
    group,
    router: new RekeyRouter(RULES),
    maxBatchRecords: 5,
    punctuationMs: 100,
    logger: silent,
    instance,
    restartDelayMs: 50,
  });
  running.push(stage);
  return stage;
}

interface Member {
  stage: EngineStage;
  updates: AlertUpdate[];
}

function stage2(group: string, checkpoints: string): Member {
  const updates: AlertUpdate[] = [];
  const stage = new EngineStage({
    rekey,
    group,
    engine: (set) => {
      const s = SETS.get(set);
      if (!s) return undefined;
      const ids = new Set(s.rules.map((r) => r.id));
      const overrides = overridesFor(undefined, ids);
      return new DetectionEngine({
        rules: s.rules,
        latenessMs: LATENESS_MS,
        ...(overrides ? { overrides } : {}),
      });
    },
    outputs: [
      {
        publish: (u) => {
          updates.push(...u);
          return Promise.resolve();
        },
      },
    ],
    checkpoints: (p) =>
      new FileCheckpointStore<PartitionCheckpoint>(
        checkpoints,
        partitionCheckpointName(group, rekeyTopic, p),
        'vigil-detector-partition',
      ),
    checkpointIntervalMs: 0,
    maxBatchRecords: 50,
    livenessMs: 2_000,
    logger: silent,
    observer: {
      batch: (r) => {
        engineEvents += r.events;
      },
      watermarkLag: () => undefined,
    },
    restartDelayMs: 50,
  });
  running.push(stage);
  return { stage, updates };
}

/** The alerts one engine raises over every appended record, read in log order. */
function reference(): Map<string, Alert> {
  const engine = new DetectionEngine({ rules: RULES, latenessMs: LATENESS_MS });
  const reader = new DetectionReader();
  const alerts = new Map<string, Alert>();
  for (const record of appended)
    for (const event of reader.read(record).events)
      for (const { alert } of engine.process(event)) alerts.set(alert.id, alert);
  return alerts;
}

function latest(updates: readonly AlertUpdate[]): Map<string, Alert> {
  const alerts = new Map<string, Alert>();
  for (const { alert } of updates) {
    const known = alerts.get(alert.id);
    if (!known || alert.version > known.version) alerts.set(alert.id, alert);
  }
  return alerts;
}

/** What must agree between two runs: which alert, on what, over which events. */
function summary(alerts: Map<string, Alert>): string[] {
  return [...alerts.values()]
    .map((a) =>
      JSON.stringify([a.ruleId, a.tenant, a.entity, a.eventCount, [...a.eventIds].sort()]),
    )
    .sort();
}

describe.skipIf(kafkaTestsSkipped())('detector re-key on Kafka', () => {
  it('two engine members split the re-key partitions, survive a restart mid-window, and raise the alerts one engine raises', async () => {
    await useTopics(0);
    engineEvents = 0;
    const g1 = uniqueKafkaName('vigil-detector-rekey');
    const g2 = uniqueKafkaName('vigil-detector');
    const checkpoints = join(dir, 'split');
    const s1 = stage1(g1, 'stage1-a');
    const a = stage2(g2, checkpoints);
    const b = stage2(g2, checkpoints);
    await Promise.all([s1.start(), a.stage.start()]);
    await waitFor(() => a.stage.owned().length === PARTITIONS, 'member A to own every partition');
    await b.stage.start();
    await waitFor(
      () =>
        b.stage.owned().length > 0 &&
        a.stage.owned().length + b.stage.owned().length === PARTITIONS,
      'the re-key partitions to be split between A and B',
      30_000,
    );

    // Eight accounts, each failing over three streams (three log partitions at most, a
    // different mix per account): six failures each, below brute force's ten.
    const accounts = Array.from({ length: 8 }, (_, i) => `acct-${i}`);
    const phase = async (from: number) => {
      for (const [i, account] of accounts.entries())
        for (let s = 0; s < 3; s++)
          await append('t1', `app-${(i + s) % 5}`, [
            failure(account, from + (s * 2 + 0) * 1000 + i),
            failure(account, from + (s * 2 + 1) * 1000 + i),
          ]);
    };
    await phase(BASE);
    await waitFor(() => s1.stats().events === 48, 'stage 1 to read the first events');
    // Both members got some of them: the accounts are spread over the re-key partitions.
    await waitFor(
      () => a.stage.stats().events > 0 && b.stage.stats().events > 0,
      'both members to work',
    );
    expect(a.updates.length + b.updates.length).toBe(0);

    // Member B restarts mid-window: its windows come back from the partitions' checkpoints,
    // on A while B is away and on B's successor after.
    await b.stage.stop();
    await waitFor(() => a.stage.owned().length === PARTITIONS, 'A to take every partition', 20_000);
    const b2 = stage2(g2, checkpoints);
    await b2.stage.start();
    await waitFor(
      () =>
        b2.stage.owned().length > 0 &&
        a.stage.owned().length + b2.stage.owned().length === PARTITIONS,
      'the partitions to be split again',
      30_000,
    );

    await phase(BASE + 60_000);
    await waitFor(() => s1.stats().events === 96, 'stage 1 to read the second events');
    const expected = summary(reference());
    expect(expected.filter((s) => s.includes('brute'))).toHaveLength(accounts.length);
    await waitFor(
      () =>
        JSON.stringify(summary(latest([...a.updates, ...b.updates, ...b2.updates]))) ===
        JSON.stringify(expected),
      () =>
        `the same alerts as one engine: got ${JSON.stringify(summary(latest([...a.updates, ...b.updates, ...b2.updates])))}, want ${JSON.stringify(expected)}`,
    );
    // Each alert raised once (one "new"), whichever member raised it, and as many as one engine
    // raises. (Alert ids name the trigger's time, which can differ: the order in which the events
    // of one account reach its window depends on how stage 1 interleaves the log partitions.)
    const updates = [...a.updates, ...b.updates, ...b2.updates];
    const raised = updates.filter((u) => u.status === 'new').map((u) => u.alert.id);
    expect(raised.sort()).toEqual([...latest(updates).keys()].sort());
    expect(raised).toHaveLength(reference().size);

    // At least once: a re-key stage sends everything again (here a new group reading the log
    // from its start, as after a lost commit). The engines count each event once: the same
    // alerts, none raised again.
    await waitFor(() => engineEvents === s1.stats().produced, 'the engines to run every message');
    const again = stage1(uniqueKafkaName('vigil-detector-rekey'), 'stage1-again');
    await again.start();
    await waitFor(() => again.stats().events === 96, 'the second re-key stage to read the log');
    await waitFor(
      () => engineEvents === s1.stats().produced + again.stats().produced,
      'the engines to run every message again',
    );
    const afterReplay = [...a.updates, ...b.updates, ...b2.updates];
    expect(summary(latest(afterReplay))).toEqual(expected);
    expect(afterReplay.filter((u) => u.status === 'new')).toHaveLength(raised.length);
  }, 60_000);

  it('carries the watermark across the re-key: an idle stage-1 instance holds nothing back, and events later than the lateness bound are dropped', async () => {
    await useTopics(1);
    const g1 = uniqueKafkaName('vigil-detector-rekey');
    const g2 = uniqueKafkaName('vigil-detector');
    const busy = stage1(g1, 'stage1-busy');
    const idle = stage1(g1, 'stage1-idle');
    const member = stage2(g2, join(dir, 'watermark'));
    await Promise.all([busy.start(), member.stage.start()]);
    await waitFor(() => busy.owned().length === PARTITIONS, 'stage 1 to own every log partition');
    await idle.start();
    await waitFor(
      () => idle.owned().length > 0 && busy.owned().length + idle.owned().length === PARTITIONS,
      'the log partitions to be split between the two stage-1 instances',
      30_000,
    );
    await waitFor(() => member.stage.owned().length === PARTITIONS, 'the engine member');
    const streamOn = (owner: RekeyStage, prefix: string): string => {
      for (let i = 0; ; i++)
        if (owner.owned().includes(log.partitionFor(`t2/${prefix}-${i}`))) return `${prefix}-${i}`;
    };

    // Traffic through the busy instance only: the engine stage's watermark follows it although
    // the other instance has read nothing.
    const T = BASE + 10 * 60_000;
    await append('t2', streamOn(busy, 'busy'), [
      failure('someone', T - 60_000),
      failure('someone', T),
    ]);
    await waitFor(
      () => member.stage.watermark() === T,
      () => `the engine watermark to reach the busy instance's (${member.stage.watermark()})`,
    );
    expect(idle.stats().punctuations).toBe(0);

    // Through the idle instance: an event older than the lateness bound is dropped (and
    // counted, by each group-by set's engine it went to); one within it is counted by the rules.
    const lateStream = streamOn(idle, 'late');
    await append('t2', lateStream, [failure('victim', T - LATENESS_MS - 1_000)]);
    await waitFor(() => idle.stats().produced > 0, 'the idle instance to re-key the late event');
    const copies = idle.stats().produced;
    await waitFor(
      () => member.stage.stats().droppedLate === copies,
      () => `the late event to be dropped: ${JSON.stringify(member.stage.stats())}`,
    );
    const counted = member.stage.stats().events;
    await append('t2', lateStream, [failure('victim', T - LATENESS_MS + 5_000)]);
    await waitFor(
      () => member.stage.stats().events === counted + copies,
      'the event within the bound',
    );
    expect(member.stage.stats().droppedLate).toBe(copies);
    // The idle instance now punctuates its own (older) watermark: the engines' stays.
    await waitFor(() => idle.stats().punctuations > 0, 'the idle instance to punctuate');
    expect(member.stage.stats().watermark).toBeLessThan(T);
    expect(member.stage.engineWatermark()).toBe(T);
  }, 60_000);
});
