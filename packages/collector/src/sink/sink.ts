import { randomBytes } from 'node:crypto';
import {
  derivedEventId,
  formatTime,
  judgeLink,
  randomSaltSource,
  sealEvent,
  STREAM_CLOSED,
  STREAM_OPENED,
  ZERO_HASH,
  type Category,
  type CompleteInput,
  type Disclosures,
  type EventRecord,
  type SaltSource,
} from '@vigil/protocol';
import {
  EVENT_COLUMN_TYPES,
  eventRow,
  RowBinaryCodec,
  toChTime,
  type EventFlag,
  type EventRow,
  type EventSource,
  type Store,
} from '@vigil/query';
import type { SinkConfig } from '../stage-config.js';
import { keyStream, type EventMessage } from '../log/event-message.js';
import type { ConsumedBatch, ConsumedRecord } from '../log/log.js';
import { HeadCache, type Head } from './heads.js';
import { isCanonicalText } from './canonical-scan.js';
import { InsertGroup } from './insert-group.js';
import { readEventMessage } from './read-message.js';
import type { BatchContext, SinkPlugin } from './plugins.js';
import { RETENTION_PLUGIN, RetentionPlugin } from './retention.js';

export interface SinkObserver {
  inserted(rows: number, seconds: number): void;
  duplicate(count: number): void;
  chainIssue(kind: 'gap' | 'fork' | 'after_close' | 'conflict' | 'noncanonical'): void;
  rejectedRecord(): void;
}

const noopObserver: SinkObserver = {
  inserted() {},
  duplicate() {},
  chainIssue() {},
  rejectedRecord() {},
};

export interface SinkLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SinkProcessorOptions {
  readonly store: Store;
  readonly config: SinkConfig;
  /** Days per category for tenants without their own retention policy (config `retention`). */
  readonly retentionDays: Readonly<Record<Category, number>>;
  readonly observer?: SinkObserver;
  readonly logger?: SinkLogger;
  readonly salts?: SaltSource;
  /** Row-building steps besides the chain (enrichment, retention, tree positions), in order. */
  readonly plugins?: readonly SinkPlugin[];
}

/**
 * Rows of `events` as the sink inserts them: RowBinaryWithDefaults, compiled once from the
 * column types (store/row-binary.ts). A column a row leaves out takes its DEFAULT.
 */
const EVENT_ROWS = new RowBinaryCodec(EVENT_COLUMN_TYPES);

/** The encoded rows of one batch, grouped with others into one INSERT (InsertGroup). */
interface EncodedRows {
  readonly chunks: readonly Buffer[];
  readonly rows: number;
}

function encodeRows(rows: readonly EventRow[]): EncodedRows {
  return { chunks: EVENT_ROWS.encode(rows).chunks(), rows: rows.length };
}

/** The system actor of events Vigil writes itself. */
const SINK_ACTOR = { type: 'system', id: 'vigil-sink' } as const;

const INTEGRITY_ACTIONS = {
  gap: 'integrity.chain_gap',
  fork: 'integrity.chain_fork',
  after_close: 'integrity.event_after_close',
  noncanonical: 'integrity.noncanonical_record',
} as const;

export function integrityStream(partition: number): string {
  return `vigil/integrity/p${partition}`;
}

interface Decoded {
  readonly record: ConsumedRecord;
  readonly message: EventMessage;
  /** Parsed records of a sealed message, parsed once per batch. */
  readonly parsed: readonly EventRecord[];
}

interface Known {
  readonly hash: string;
  readonly digest: string;
}

/**
 * The stateful half of ingest (PROTOCOL.md §6.2, §7): the one consumer of a log partition owns
 * every stream keyed to it, so it alone judges links across batches, gaps and forks, and chains
 * the events posted without chain fields. It never refuses an event — a gap or fork is stored,
 * marked, and reported as a security event — and it is idempotent: a batch delivered again
 * after a crash yields no second row (ids already stored are recognised and skipped).
 */
export class SinkProcessor {
  private readonly heads: HeadCache;
  private readonly observer: SinkObserver;
  private readonly salts: SaltSource;
  private readonly plugins: readonly SinkPlugin[];
  /** One INSERT for the batches of several partitions processed at the same time. */
  private readonly inserts: InsertGroup<EncodedRows>;

  constructor(private readonly options: SinkProcessorOptions) {
    this.heads = new HeadCache(options.store);
    const { store } = options;
    this.observer = options.observer ?? noopObserver;
    this.inserts = new InsertGroup(async (batches) => {
      const started = performance.now();
      // The batches' bytes one after another: RowBinary rows need no separator.
      const chunks =
        batches.length === 1
          ? (batches[0] as EncodedRows).chunks
          : batches.flatMap((b) => b.chunks);
      await store.insertRowBinary(store.table('events'), EVENT_ROWS.names, chunks);
      let rows = 0;
      for (const b of batches) rows += b.rows;
      this.observer.inserted(rows, (performance.now() - started) / 1000);
    });
    this.salts = options.salts ?? randomSaltSource();
    // expires_at and legal_hold come from the retention plugin; a processor given none runs one
    // on the configured defaults, so no row is ever stored without its expiry.
    const plugins = options.plugins ?? [];
    this.plugins = plugins.some((p) => p.name === RETENTION_PLUGIN)
      ? plugins
      : [
          ...plugins,
          new RetentionPlugin({
            store: options.store,
            defaults: options.retentionDays,
            ...(options.logger ? { logger: options.logger } : {}),
          }),
        ];
  }

  /** Forget cached heads (after a failure or a rebalance): they are reloaded from the store. */
  reset(): void {
    this.heads.clear();
    for (const plugin of this.plugins) plugin.reset?.();
  }

  async process(batch: ConsumedBatch): Promise<void> {
    const { store } = this.options;
    const rejects: object[] = [];
    const decoded: Decoded[] = [];
    for (const record of batch.records) {
      try {
        const { message, records: parsed } = readEventMessage(record.value);
        decoded.push({ record, message, parsed });
      } catch (error) {
        this.keepRejected(rejects, record, asMessage(error), tenantOf(record.value));
      }
    }
    // At most one round of setting aside records whose rows the store refuses (see storeRows).
    let live = decoded;
    // Unchained events refused while sealing, already set aside (a second round builds again).
    const refusedEvents = new Set<string>();
    for (let round = 0; ; round++) {
      this.inserts.begin();
      let submitted = false;
      try {
        const run = await this.build(batch.partition, live, rejects, refusedEvents);
        if (rejects.length > 0) await store.insert(store.table('rejected_records'), rejects);
        rejects.length = 0;
        submitted = true;
        const refused = await this.storeRows(run, round);
        if (refused !== undefined) {
          live = run.decoded.filter((d) => !refused.has(d.record.offset));
          for (const d of run.decoded) {
            const error = refused.get(d.record.offset);
            if (error !== undefined)
              this.keepRejected(
                rejects,
                d.record,
                `the store refused its rows: ${error}`,
                d.message.tenant,
              );
          }
          continue;
        }
        if (run.duplicates > 0) this.observer.duplicate(run.duplicates);
        for (const [k, v] of run.headUpdates) this.heads.set(k.tenant, k.stream, v);
        for (const plugin of this.plugins) await plugin.stored?.(run.rows, run.context);
        return;
      } finally {
        if (!submitted) this.inserts.abandon();
      }
    }
  }

  /**
   * Turns decoded log records into rows. Any exception while one record becomes rows (a value
   * the checks did not foresee, a bug in a plugin) sets that record aside, and the rows are
   * built again without it from a fresh start of every plugin: rows, heads and tree positions
   * of the batch stay exactly those of the records that are stored. One bad record must never
   * stop its partition (it would be delivered again forever).
   */
  private async build(
    partition: number,
    decoded: readonly Decoded[],
    rejects: object[],
    refusedEvents: Set<string>,
  ): Promise<BatchRun & { readonly decoded: readonly Decoded[]; readonly context: BatchContext }> {
    let live = decoded;
    await this.prefetch(partition, live);
    const known = await this.lookupIds(live);
    for (;;) {
      const context: BatchContext = {
        partition,
        tenants: new Set(live.map((d) => d.message.tenant)),
      };
      for (const plugin of this.plugins) await plugin.prepare?.(context);
      const run = new BatchRun(this, partition, known, this.plugins);
      let failed: { d: Decoded; error: unknown } | undefined;
      for (const d of live) {
        try {
          run.apply(d);
        } catch (error) {
          failed = { d, error };
          break;
        }
      }
      if (failed === undefined) {
        for (const r of run.refused) {
          const key = `${r.record.offset}/${r.index}`;
          if (refusedEvents.has(key)) continue;
          refusedEvents.add(key);
          this.keepRejected(
            rejects,
            r.record,
            `invalid log record: /events/${r.index}/input ${r.error}`,
            tenantOf(r.record.value),
          );
        }
        return Object.assign(run, { decoded: live, context });
      }
      const bad = failed.d;
      this.keepRejected(
        rejects,
        bad.record,
        `cannot be turned into rows: ${asMessage(failed.error)}`,
        bad.message.tenant,
      );
      live = live.filter((d) => d !== bad);
    }
  }

  /**
   * Inserts the rows of a batch. When the store refuses the insert for its data (a value of a
   * row it cannot parse or convert, or rows the client cannot serialise), one row would otherwise
   * block the partition for good: the rows of each log record are then tried alone against a
   * table of the same columns that keeps nothing (ENGINE = Null: ClickHouse parses and converts
   * every value, then discards it), and the records whose rows fail are returned to be set aside;
   * the batch is then built again without them (a record's rows hold tree positions that depend
   * on the records before them, so records are never inserted one by one for real). Only once per
   * batch: when the rows fail again, or no record alone fails, it is an outage or a bug and the
   * batch fails as before (the runner retries it).
   */
  private async storeRows(run: BatchRun, round: number): Promise<Map<number, string> | undefined> {
    try {
      let encoded: EncodedRows;
      try {
        // A value its column's type cannot hold is refused here, before the store sees it (a
        // RowBinaryError, a data error like the store's own).
        encoded = encodeRows(run.rows);
      } catch (error) {
        this.inserts.abandon();
        throw error;
      }
      await this.inserts.submit(run.rows.length === 0 ? [] : [encoded]);
      return undefined;
    } catch (error) {
      if (round > 0 || !isDataError(error)) throw error;
      const refused = await this.probe(run.rows);
      const records = new Set(run.rows.map((r) => r.log_offset)).size;
      // Every record failing alike is not one bad row: a schema or client problem.
      if (refused.size === 0 || (records > 1 && refused.size === records)) throw error;
      this.options.logger?.error(
        { err: error, offsets: [...refused.keys()] },
        'the store refused rows of a batch; setting aside the log records they come from',
      );
      return refused;
    }
  }

  /** The log offsets whose rows the store refuses when inserted alone, with its error. */
  private async probe(rows: readonly EventRow[]): Promise<Map<number, string>> {
    const { store } = this.options;
    // A table of this process's own, made from the events table as it is now (so it has every
    // column of the rows), and dropped after: sinks of other processes may probe at the same time.
    const table = store.table(`events_probe_${randomBytes(6).toString('hex')}`);
    await store.command(`CREATE TABLE ${table} AS ${store.table('events')} ENGINE = Null`);
    try {
      return await this.probeRows(table, rows);
    } finally {
      await store.command(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    }
  }

  private async probeRows(table: string, rows: readonly EventRow[]): Promise<Map<number, string>> {
    const { store } = this.options;
    const byOffset = new Map<number, EventRow[]>();
    for (const row of rows) {
      let list = byOffset.get(row.log_offset);
      if (!list) byOffset.set(row.log_offset, (list = []));
      list.push(row);
    }
    const refused = new Map<number, string>();
    for (const [offset, list] of byOffset) {
      try {
        await store.insertRowBinary(table, EVENT_ROWS.names, encodeRows(list).chunks);
      } catch (error) {
        if (!isDataError(error)) throw error;
        refused.set(offset, asMessage(error));
      }
    }
    return refused;
  }

  /** Kept, not dropped: an operator can inspect the record and replay it. */
  private keepRejected(
    rejects: object[],
    record: ConsumedRecord,
    error: string,
    tenant: string,
  ): void {
    rejects.push({
      tenant_id: tenant,
      log_partition: record.partition,
      log_offset: record.offset,
      logged_at: record.timestamp,
      error,
      payload: record.value.toString('base64'),
    });
    this.observer.rejectedRecord();
    this.options.logger?.error(
      { tenant, partition: record.partition, offset: record.offset, error },
      'log record set aside in rejected_records',
    );
  }

  /** Heads of every stream this batch touches, including key and integrity streams. */
  private async prefetch(partition: number, decoded: readonly Decoded[]): Promise<void> {
    const wanted = new Map<string, Set<string>>();
    for (const { message } of decoded) {
      let set = wanted.get(message.tenant);
      if (!set) wanted.set(message.tenant, (set = new Set([integrityStream(partition)])));
      set.add(message.stream);
    }
    await this.heads.load(wanted);
  }

  /**
   * Stored copies of ids that may be replays: unchained events (their replays carry no chain
   * position) and sealed events at or below their stream's head. One query per tenant, bounded
   * by the events' own times so the primary key prunes it.
   */
  private async lookupIds(decoded: readonly Decoded[]): Promise<Map<string, Known>> {
    const { store } = this.options;
    // Sealed events carry their time in their bytes, so a replay has the same time and the
    // lookup can be bounded by it (the primary key prunes). An unchained event's time may have
    // been filled in by whichever collector took it, so its copies can differ in time: those are
    // looked up by id alone (the id bloom-filter index skips granules).
    const bounded = new Map<string, { ids: string[]; min: string; max: string }>();
    const loose = new Map<string, string[]>();
    for (const { message, parsed } of decoded) {
      if (message.kind === 'unchained') {
        let ids = loose.get(message.tenant);
        if (!ids) loose.set(message.tenant, (ids = []));
        for (const e of message.events) ids.push(e.input.id);
        continue;
      }
      const head = this.heads.peek(message.tenant, message.stream);
      if (!head) continue;
      for (const r of parsed) {
        if (r.seq > head.seq) continue;
        let t = bounded.get(message.tenant);
        if (!t) bounded.set(message.tenant, (t = { ids: [], min: r.time, max: r.time }));
        t.ids.push(r.id);
        if (r.time < t.min) t.min = r.time;
        if (r.time > t.max) t.max = r.time;
      }
    }
    const known = new Map<string, Known>();
    const remember = (
      tenant: string,
      rows: { event_id: string; hash: string; submitted_digest: string }[],
    ): void => {
      for (const r of rows)
        known.set(tenant + '\u0000' + r.event_id, { hash: r.hash, digest: r.submitted_digest });
    };
    // Aliases must not reuse column names: ClickHouse resolves them in WHERE too.
    const columns = `SELECT toString(id) AS event_id, hash, submitted_digest FROM ${store.table('events')}`;
    for (const [tenant, { ids, min, max }] of bounded) {
      remember(
        tenant,
        await store.query(
          `${columns} WHERE tenant_id = {tenant:String} AND time >= {min:DateTime64(3)} AND time <= {max:DateTime64(3)}
             AND id IN {ids:Array(UUID)}`,
          { tenant, ids, min: toChTime(min), max: toChTime(max) },
        ),
      );
    }
    for (const [tenant, ids] of loose) {
      remember(
        tenant,
        await store.query(
          `${columns} WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
          { tenant, ids },
        ),
      );
    }
    return known;
  }

  /** @internal used by BatchRun */
  cachedHead(tenant: string, stream: string): Head | null {
    return this.heads.peek(tenant, stream) ?? null;
  }

  /** @internal */
  get salt(): SaltSource {
    return this.salts;
  }

  /** @internal */
  get opts(): SinkProcessorOptions {
    return this.options;
  }
}

interface StreamKey {
  readonly tenant: string;
  readonly stream: string;
}

/** The judging of one batch, in log order, with the heads as they advance through it. */
class BatchRun {
  readonly rows: EventRow[] = [];
  readonly headUpdates = new Map<StreamKey, Head>();
  /** Unchained events the sink could not seal (readEventMessage lets through what it cannot judge). */
  readonly refused: { record: ConsumedRecord; index: number; error: string }[] = [];
  duplicates = 0;
  private readonly local = new Map<string, { key: StreamKey; head: Head }>();
  /** Ids stored by this batch, for replays inside one batch. */
  private readonly batchIds = new Map<string, Known>();

  constructor(
    private readonly sink: SinkProcessor,
    private readonly partition: number,
    private readonly known: Map<string, Known>,
    private readonly plugins: readonly SinkPlugin[],
  ) {}

  private head(tenant: string, stream: string): Head | null {
    const l = this.local.get(tenant + '\u0000' + stream);
    return l ? l.head : this.sink.cachedHead(tenant, stream);
  }

  private advance(tenant: string, stream: string, head: Head): void {
    const id = tenant + '\u0000' + stream;
    let entry = this.local.get(id);
    if (!entry) {
      entry = { key: { tenant, stream }, head };
      this.local.set(id, entry);
    } else {
      entry.head = head;
    }
    this.headUpdates.set(entry.key, head);
  }

  private knownId(tenant: string, id: string): Known | undefined {
    const k = tenant + '\u0000' + id;
    return this.batchIds.get(k) ?? this.known.get(k);
  }

  apply({ record, message, parsed: records }: Decoded): void {
    // Protocol times are fixed-width UTC text, so they compare as strings.
    const backfillBefore = formatTime(message.backfillBefore);
    if (message.kind === 'sealed') {
      message.events.forEach((e, index) => {
        const parsed = records[index] as EventRecord;
        const flags: EventFlag[] = parsed.time < backfillBefore ? ['backfill'] : [];
        const head = this.head(message.tenant, parsed.stream);
        let verdict = judgeLink(head ?? undefined, parsed.seq, parsed.prev);
        if (verdict === 'behind') {
          const stored = this.knownId(message.tenant, parsed.id);
          if (stored && stored.hash === e.hash) {
            this.duplicates++;
            return;
          }
          verdict = 'fork';
        }
        // The collector hashes the bytes as sent; whether they are the canonical form is
        // checked here, once per stored record, off the request path (PROTOCOL.md §4, §8.1):
        // in one pass over the text, see canonical-scan.ts.
        if (!isCanonicalText(e.record, parsed)) {
          flags.push('noncanonical');
          this.integrity(message, record, 'noncanonical', parsed, e.hash, head);
        }
        if (head?.closed && verdict !== 'fork') {
          flags.push('after_close');
          this.integrity(message, record, 'after_close', parsed, e.hash, head);
        }
        if (verdict === 'gap' || verdict === 'fork') {
          flags.push(verdict);
          this.integrity(message, record, verdict, parsed, e.hash, head);
        }
        this.row(message, record, index, e, parsed, 'sealed', '', flags);
        this.batchIds.set(message.tenant + '\u0000' + parsed.id, { hash: e.hash, digest: '' });
        if (verdict !== 'fork' || !head || parsed.seq > head.seq) {
          this.advance(message.tenant, parsed.stream, {
            seq: parsed.seq,
            hash: e.hash,
            // Once closed, a stream stays closed: every later event is flagged, not just the first.
            closed: (head?.closed ?? false) || parsed.action === STREAM_CLOSED,
          });
        }
      });
      return;
    }
    const stream = keyStream(message.keyId);
    message.events.forEach((e, index) => {
      const stored = this.knownId(message.tenant, e.input.id);
      const flags: EventFlag[] = e.input.time < backfillBefore ? ['backfill'] : [];
      if (stored) {
        if (stored.digest === e.digest) {
          this.duplicates++;
          return;
        }
        flags.push('conflict');
        this.sink.opts.observer?.chainIssue('conflict');
        this.sink.opts.logger?.warn(
          { tenant: message.tenant, id: e.input.id },
          'event id reused with other content; stored and flagged',
        );
      }
      try {
        this.appendChained(message, record, index, stream, e.input, 'unchained', e.digest, flags);
      } catch (error) {
        // Sealing failed before anything of this event was kept: it alone is refused.
        this.refused.push({ record, index, error: asMessage(error) });
      }
    });
  }

  /** Chains an event on a stream this sink writes (key and integrity streams), opening it first if new. */
  private appendChained(
    message: EventMessage,
    record: ConsumedRecord,
    index: number,
    stream: string,
    input: CompleteInput,
    source: EventSource,
    digest: string,
    flags: EventFlag[],
  ): void {
    let head = this.head(message.tenant, stream);
    if (!head) {
      const opened: CompleteInput = {
        id: derivedEventId(message.receivedAt, `${message.tenant}|${stream}|opened`),
        time: formatTime(message.receivedAt),
        action: STREAM_OPENED,
        category: 'system',
        outcome: 'success',
        actor: SINK_ACTOR,
        metadata: { chainedBy: 'vigil-sink', logPartition: this.partition },
      };
      head = this.seal(message, record, index, stream, opened, null, 'vigil', '', []);
    }
    this.seal(message, record, index, stream, input, head, source, digest, flags);
  }

  private seal(
    message: EventMessage,
    record: ConsumedRecord,
    index: number,
    stream: string,
    input: CompleteInput,
    head: Head | null,
    source: EventSource,
    digest: string,
    flags: EventFlag[],
  ): Head {
    const link = head
      ? { stream, seq: head.seq + 1, prev: head.hash }
      : { stream, seq: 0, prev: ZERO_HASH };
    const sealed = sealEvent(input, link, this.sink.salt);
    this.row(message, record, index, sealed.event, sealed.record, source, digest, flags);
    this.batchIds.set(message.tenant + '\u0000' + input.id, { hash: sealed.event.hash, digest });
    const next = { seq: link.seq, hash: sealed.event.hash, closed: false };
    this.advance(message.tenant, stream, next);
    return next;
  }

  private integrity(
    message: EventMessage,
    record: ConsumedRecord,
    kind: 'gap' | 'fork' | 'after_close' | 'noncanonical',
    parsed: EventRecord,
    hash: string,
    head: Head | null,
  ): void {
    this.sink.opts.logger?.warn(
      {
        tenant: message.tenant,
        stream: parsed.stream,
        seq: parsed.seq,
        headSeq: head?.seq ?? null,
        kind,
      },
      `chain ${kind} recorded`,
    );
    this.sink.opts.observer?.chainIssue(kind);
    const action = INTEGRITY_ACTIONS[kind];
    const input: CompleteInput = {
      id: derivedEventId(
        message.receivedAt,
        `${message.tenant}|${parsed.stream}|${parsed.id}|${hash}|${kind}`,
      ),
      time: formatTime(message.receivedAt),
      action,
      category: 'security',
      outcome: 'failure',
      actor: SINK_ACTOR,
      target: { type: 'stream', id: parsed.stream },
      metadata: {
        eventId: parsed.id,
        eventHash: hash,
        seq: parsed.seq,
        prev: parsed.prev,
        expectedSeq: head ? head.seq + 1 : 0,
        expectedPrev: head ? head.hash : ZERO_HASH,
        keyId: message.keyId,
        logPartition: record.partition,
        logOffset: record.offset,
      },
    };
    this.appendChained(message, record, 0, integrityStream(this.partition), input, 'vigil', '', []);
  }

  private row(
    message: EventMessage,
    record: ConsumedRecord,
    index: number,
    event: {
      readonly record: string;
      readonly hash: string;
      readonly bytes?: Buffer | undefined;
      readonly disclosures?: Disclosures | undefined;
    },
    parsed: EventRecord,
    source: EventSource,
    digest: string,
    flags: readonly EventFlag[],
  ): void {
    const row = eventRow(event, parsed, event.disclosures, {
      tenantId: message.tenant,
      receivedAt: message.receivedAt,
      keyId: message.keyId,
      source,
      submittedDigest: digest,
      logPartition: record.partition,
      logOffset: record.offset,
      logIndex: index,
      // Set by the retention plugin (./retention.ts), which every processor runs.
      expiresAt: 0,
      flags,
    });
    for (const plugin of this.plugins)
      plugin.decorate?.(row, {
        partition: this.partition,
        record: parsed,
        disclosures: event.disclosures,
      });
    this.rows.push(row);
  }
}

function asMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The tenant a log record names, if it decodes that far; '' when not. */
function tenantOf(value: Buffer): string {
  try {
    // The header line of a sealed message, or the whole of another (event-message.ts).
    const lf = value.indexOf(0x0a);
    const head = lf < 0 ? value : value.subarray(0, lf);
    const tenant = (JSON.parse(head.toString('utf8')) as { tenant?: unknown } | null)?.tenant;
    return typeof tenant === 'string' ? tenant : '';
  } catch {
    return '';
  }
}

/**
 * ClickHouse errors about the data of an insert rather than the server or the schema
 * (ClickHouse src/Common/ErrorCodes.cpp), and values the client cannot serialise (RangeError:
 * too deep; TypeError: a BigInt or a cycle).
 */
const DATA_ERROR_CODES: ReadonlySet<string> = new Set([
  '6', // CANNOT_PARSE_TEXT
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '32', // ATTEMPT_TO_READ_AFTER_EOF
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '53', // TYPE_MISMATCH
  '69', // ARGUMENT_OUT_OF_BOUND
  '70', // CANNOT_CONVERT_TYPE
  '72', // CANNOT_PARSE_NUMBER
  '117', // INCORRECT_DATA
  '131', // TOO_LARGE_STRING_SIZE
  '321', // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  '376', // CANNOT_PARSE_UUID_LIKE
  '441', // CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
  '467', // CANNOT_PARSE_BOOL
]);

export function isDataError(error: unknown): boolean {
  if (error instanceof RangeError || error instanceof TypeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && DATA_ERROR_CODES.has(code)) return true;
  // chDB reports errors as text: "Code: 27. DB::Exception: …".
  const match = /\bCode: (\d+)\./.exec(asMessage(error));
  return match !== null && DATA_ERROR_CODES.has(match[1] as string);
}
