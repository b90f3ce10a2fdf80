import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import {
  checkBatchLinks,
  checkSealedEvent,
  type BatchLinkItem,
  type ErrorDetail,
  type EventRecord,
  type SealedEvent,
} from '@vigil/protocol';
import { SEALED_CONTENT_TYPE, sealedEventsOf } from '../deliver/framing.js';

/*
 * A small stand-in for the collector's POST /v1/events, on 127.0.0.1 and a free port: it reads
 * the sealed framing of PROTOCOL.md §9 (`application/vnd.vigil.sealed.v2`, the SDK's form) and
 * the JSON form (`{"events":[…]}`), checks
 * every event with the protocol's checkSealedEvent and every request's links with
 * checkBatchLinks (as the real collector does), dedupes by id and hash, and keeps what it
 * accepts in arrival order. Tests steer it with `intercept` to simulate outages and refusals.
 */

export interface StoredEvent {
  readonly event: SealedEvent;
  readonly record: EventRecord;
}

export interface SeenRequest {
  readonly status: number;
  readonly events: number;
  readonly gzip: boolean;
  readonly contentType: string;
  /** The request body as received (after gunzip). */
  readonly body: Buffer;
  /** [stream, first seq, last seq] of each stream in the request. */
  readonly spans: readonly [string, number, number][];
}

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface InterceptContext {
  readonly events: readonly SealedEvent[];
  readonly records: readonly EventRecord[];
  /** Stores the batch as a 202 would, without answering; for lost-response simulations. */
  store(): { accepted: number; duplicates: number };
}

export class FakeCollector {
  readonly stored: StoredEvent[] = [];
  readonly requests: SeenRequest[] = [];
  /** Requests refused because the SDK sent something the protocol forbids: must stay empty. */
  readonly protocolViolations: { details: ErrorDetail[] }[] = [];
  apiKey = 'test-key';
  /** Return a reply to answer instead of the normal path; undefined to go on normally. */
  intercept: ((ctx: InterceptContext) => Reply | undefined) | undefined;
  private readonly byId = new Map<string, string>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeCollector> {
    const holder: { collector?: FakeCollector } = {};
    const server = createServer((req, res) => {
      (holder.collector as FakeCollector).handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ error: { code: 'TEST', message: String(error) } }));
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    holder.collector = new FakeCollector(server, `http://127.0.0.1:${port}`);
    return holder.collector;
  }

  /** Stored records of one stream, in arrival order. */
  streamRecords(stream: string): EventRecord[] {
    return this.stored.filter((s) => s.record.stream === stream).map((s) => s.record);
  }

  streams(): string[] {
    return [...new Set(this.stored.map((s) => s.record.stream))];
  }

  async waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error('timed out waiting for the fake collector');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private send(res: ServerResponse, reply: Reply): void {
    res.statusCode = reply.status;
    res.setHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    res.end(JSON.stringify(reply.body ?? {}));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let raw = Buffer.concat(chunks);
    const gzip = req.headers['content-encoding'] === 'gzip';
    if (gzip) raw = gunzipSync(raw);
    if (req.method !== 'POST' || req.url !== '/v1/events') {
      this.send(res, {
        status: 404,
        body: { error: { code: 'VIGIL_ERR_NOT_FOUND', message: 'no route' } },
      });
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) {
      this.send(res, {
        status: 401,
        body: { error: { code: 'VIGIL_ERR_UNAUTHENTICATED', message: 'bad key' } },
      });
      return;
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const details: ErrorDetail[] = [];
    let wires: unknown[];
    if (contentType === SEALED_CONTENT_TYPE) {
      const framed = sealedEventsOf(raw);
      details.push(...framed.details);
      wires = framed.events;
    } else if (contentType === 'application/json') {
      wires = (JSON.parse(raw.toString('utf8')) as { events: unknown[] }).events;
    } else {
      this.send(res, {
        status: 415,
        body: { error: { code: 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE', message: contentType } },
      });
      return;
    }
    const records: EventRecord[] = [];
    const events: SealedEvent[] = [];
    const links: BatchLinkItem[] = [];
    wires.forEach((wire, index) => {
      if (wire === undefined) return;
      const checked = checkSealedEvent(wire, index);
      if (!checked.ok) {
        details.push(...checked.details);
        return;
      }
      const { record, event } = checked.value;
      records.push(record);
      events.push(event);
      links.push({
        index,
        stream: record.stream,
        seq: record.seq,
        prev: record.prev,
        hash: event.hash,
      });
    });
    details.push(...checkBatchLinks(links));
    const spans = new Map<string, [string, number, number]>();
    for (const r of records) {
      const span = spans.get(r.stream);
      if (span === undefined) spans.set(r.stream, [r.stream, r.seq, r.seq]);
      else span[2] = r.seq;
    }
    const seen = (status: number): void => {
      this.requests.push({
        status,
        events: wires.length,
        gzip,
        contentType,
        body: raw,
        spans: [...spans.values()],
      });
    };
    if (details.length > 0) {
      this.protocolViolations.push({ details });
      seen(400);
      this.send(res, {
        status: 400,
        body: { error: { code: 'VIGIL_ERR_INVALID_BATCH', message: 'invalid events', details } },
      });
      return;
    }
    const store = (): { accepted: number; duplicates: number } => {
      let duplicates = 0;
      events.forEach((event, i) => {
        const record = records[i] as EventRecord;
        const known = this.byId.get(record.id);
        if (known === event.hash) {
          duplicates++;
          return;
        }
        this.byId.set(record.id, event.hash);
        this.stored.push({ event, record });
      });
      return { accepted: events.length, duplicates };
    };
    const override = this.intercept?.({ events, records, store });
    if (override !== undefined) {
      seen(override.status);
      this.send(res, override);
      return;
    }
    const result = store();
    seen(202);
    this.send(res, { status: 202, body: result });
  }
}

/** Asserts a stream's stored events form one chain from seq 0 (or `from`) without gaps. */
export function chainProblems(
  records: readonly EventRecord[],
  hashes: ReadonlyMap<string, string>,
): string[] {
  const problems: string[] = [];
  for (let i = 1; i < records.length; i++) {
    const a = records[i - 1] as EventRecord;
    const b = records[i] as EventRecord;
    if (b.seq !== a.seq + 1) problems.push(`seq ${a.seq} is followed by ${b.seq}`);
    else if (b.prev !== hashes.get(a.id))
      problems.push(`seq ${b.seq} does not link to seq ${a.seq}`);
  }
  return problems;
}

/** id → hash of every stored event, for chainProblems. */
export function hashIndex(collector: FakeCollector): Map<string, string> {
  return new Map(collector.stored.map((s) => [s.record.id, s.event.hash]));
}

/** A silent logger for tests. */
export const quietLogger = { warn: (): void => undefined, error: (): void => undefined };
