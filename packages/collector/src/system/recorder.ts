import { hostname } from 'node:os';
import {
  ZERO_HASH,
  formatTime,
  jsonShapeProblem,
  newEventId,
  randomSaltSource,
  sealEvent,
  STREAM_OPENED,
  type CompleteInput,
  type Party,
  type SaltSource,
} from '@vigil/protocol';
import {
  InvalidQueryError,
  type AdminChange,
  type ChangeActor,
  type ChangeRecorder,
  type RecordedChange,
} from '@vigil/query';
import {
  EVENT_MESSAGE_VERSION,
  encodeEventMessage,
  messageKey,
  type EventMessage,
  type SealedEntry,
} from '../log/event-message.js';
import type { Log } from '../log/log.js';
import { VERSION } from '../version.js';

/**
 * Records Vigil's own administrative changes (tenants, keys, retention) as audit events. Each
 * process writes, per tenant, one chain on the stream `vigil/admin/<host>/<boot id>`: sealed
 * here, appended to the log like a client's sealed batch, stored by the sink like any event,
 * and searchable by the tenant it concerns. A chain has one writer (this process), so its
 * links are known here without asking the store; `stream.opened` comes first (PROTOCOL.md §6).
 */
export interface SystemRecorderOptions {
  /** Host part of the stream id (default: os.hostname(), reduced to stream characters). */
  readonly host?: string;
  /** Boot id of this process, a UUIDv7 (default: a new one). */
  readonly bootId?: string;
  readonly salts?: SaltSource;
  readonly clock?: () => number;
}

/** The prefix of every system stream of admin changes. */
export const ADMIN_STREAM_PREFIX = 'vigil/admin/';

interface Chain {
  readonly stream: string;
  /** Seq of the next event; 0: the stream is not opened yet. */
  readonly next: number;
  readonly prev: string;
}

const RECORDER_ACTOR: Party = { type: 'system', id: 'vigil-recorder' };

/** A host name as a stream segment: the characters PROTOCOL.md §3 allows in a stream id. */
export function streamHost(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned.slice(0, 63) || 'host';
}

export class SystemRecorder implements ChangeRecorder {
  private readonly host: string;
  private readonly bootId: string;
  private readonly salts: SaltSource;
  private readonly clock: () => number;
  private readonly chains = new Map<string, Chain>();
  /** The last record of each tenant, so records of one tenant append in chain order. */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(
    private readonly log: Log,
    options: SystemRecorderOptions = {},
  ) {
    this.host = streamHost(options.host ?? hostname());
    this.clock = options.clock ?? Date.now;
    this.bootId = options.bootId ?? newEventId(this.clock());
    this.salts = options.salts ?? randomSaltSource();
  }

  /** The stream the next change of `tenantId` goes to. */
  streamOf(tenantId: string): string {
    return this.chainOf(tenantId).stream;
  }

  record(tenantId: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    const previous = this.tails.get(tenantId) ?? Promise.resolve();
    const append = (): Promise<RecordedChange> => this.append(tenantId, actor, change);
    const next = previous.then(append, append);
    const tail = next.catch(() => undefined);
    this.tails.set(tenantId, tail);
    void tail.then(() => {
      if (this.tails.get(tenantId) === tail) this.tails.delete(tenantId);
    });
    return next;
  }

  private chainOf(tenantId: string): Chain {
    return (
      this.chains.get(tenantId) ?? {
        stream: `${ADMIN_STREAM_PREFIX}${this.host}/${this.bootId}`,
        next: 0,
        prev: ZERO_HASH,
      }
    );
  }

  private async append(
    tenantId: string,
    actor: ChangeActor,
    change: AdminChange,
  ): Promise<RecordedChange> {
    // A change carries values from a request (a correction's fields, say). One nested beyond
    // the limits of PROTOCOL.md §3.5 would be sealed and logged here, and the sink would then
    // set its whole log record aside: a change answered as recorded but never stored, and a
    // gap in this chain. Refused before anything is sealed.
    const shape = jsonShapeProblem(change);
    if (shape !== undefined)
      throw new InvalidQueryError(`the change cannot be recorded: ${shape.message}`, [
        { path: shape.path, message: shape.message },
      ]);
    const now = this.clock();
    const time = formatTime(now);
    const chain = this.chainOf(tenantId);
    const { stream } = chain;
    let seq = chain.next;
    let prev = chain.prev;
    const events: SealedEntry[] = [];
    const seal = (input: CompleteInput): SealedEntry => {
      const { event } = sealEvent(input, { stream, seq, prev }, this.salts);
      events.push(event);
      seq += 1;
      prev = event.hash;
      return event;
    };
    if (chain.next === 0) {
      seal({
        id: newEventId(now),
        time,
        action: STREAM_OPENED,
        category: 'system',
        outcome: 'success',
        actor: RECORDER_ACTOR,
        metadata: { host: this.host, purpose: 'admin changes', version: VERSION },
      });
    }
    const id = newEventId(now);
    // A full EventInput may come in (retention passes one): its own actor, id and time give
    // way to the recorder's, which say who made the change and when it was recorded.
    const {
      actor: _claimed,
      id: _id,
      time: _time,
      personal,
      ...content
    } = change as AdminChange & {
      actor?: unknown;
      id?: unknown;
      time?: unknown;
    };
    const event = seal({
      ...content,
      id,
      time,
      action: change.action,
      category: change.category ?? 'admin',
      outcome: change.outcome ?? 'success',
      actor:
        typeof actor === 'string'
          ? { type: 'api_key', id: actor }
          : { type: 'system', id: actor.system },
      ...(personal && personal.length > 0 ? { personal: [...personal] } : {}),
    });
    const message: EventMessage = {
      v: EVENT_MESSAGE_VERSION,
      kind: 'sealed',
      tenant: tenantId,
      keyId: typeof actor === 'string' ? actor : '',
      receivedAt: now,
      // Timed by this process's clock as they happen: never backfill.
      backfillBefore: 0,
      stream,
      events,
    };
    try {
      await this.log.append([
        { key: messageKey(tenantId, stream), value: encodeEventMessage(message), timestamp: now },
      ]);
    } catch (error) {
      // Whether a failed append reached the log is unknown (a broker may time out after
      // writing). Continuing this chain could show a gap or a fork that never happened, so the
      // next change of this tenant opens a new stream instead.
      this.chains.set(tenantId, {
        stream: `${ADMIN_STREAM_PREFIX}${this.host}/${newEventId(this.clock())}`,
        next: 0,
        prev: ZERO_HASH,
      });
      throw error;
    }
    this.chains.set(tenantId, { stream, next: seq, prev });
    return { id, stream, seq: seq - 1, hash: event.hash };
  }
}
