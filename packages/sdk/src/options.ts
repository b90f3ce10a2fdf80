import {
  committablePathProblem,
  RESERVED_STREAM_PREFIXES,
  PATTERNS,
  type EventContext,
  type Party,
  type SaltSource,
} from '@vigil/protocol';
import type { AuditTransport } from './deliver/transport.js';
import { InvalidOptionsError } from './errors.js';

/**
 * When a spooled event is on disk for good:
 * - `'always'`: `record()` resolves after `fdatasync` of the write that holds the event. Events
 *   recorded in the same tick, and those recorded while a sync is running, share one sync.
 * - `{ groupCommitMs }`: writes and syncs every N ms; `record()` resolves after that sync.
 * - `'none'`: `record()` resolves once the bytes are written to the file (page cache): safe from
 *   a crash of the process, not from a crash or power loss of the machine.
 */
export type FsyncPolicy = 'always' | 'none' | { readonly groupCommitMs: number };

/**
 * What `record()` does when the queue (no spool) or the spool is full:
 * - `'drop-oldest'`: makes room by dropping the oldest undelivered events, counts them in
 *   `dropped` and emits `VIGIL_ERR_SDK_EVENTS_DROPPED`; the collector sees the chain gap.
 * - `'block'`: `record()`'s promise stays pending until there is room. At most
 *   `queue.maxEvents` events wait that way; beyond that `record()` throws.
 * - `'throw'`: `record()` throws `QueueFullError` synchronously and the event is not recorded
 *   (no gap: it never got a sequence number).
 */
export type FullPolicy = 'block' | 'drop-oldest' | 'throw';

export interface SpoolOptions {
  /** Directory of this process's spool; one process per directory (a lock file enforces it). */
  readonly dir: string;
  /** Default `'always'`. */
  readonly fsync?: FsyncPolicy;
  /** Bound on the spool's files, in bytes. Default 256 MiB. */
  readonly maxBytes?: number;
  /** Default `'drop-oldest'`. */
  readonly onFull?: FullPolicy;
  /** Size at which a spool file is closed and a new one started. Default min(maxBytes / 8, 8 MiB). */
  readonly segmentBytes?: number;
}

export interface BatchOptions {
  /** Default 1000. */
  readonly maxEvents?: number;
  /** Bound on a request body before compression, in bytes. Default 1 MiB. */
  readonly maxBytes?: number;
  /** How long an event may wait for a fuller batch. Default 200 ms. */
  readonly maxDelayMs?: number;
}

export interface QueueOptions {
  /** Events held in memory. Default 20 000. With a spool, events past this bound stay on disk only. */
  readonly maxEvents?: number;
  /** Serialised bytes held in memory. Default 32 MiB. */
  readonly maxBytes?: number;
  /** Without a spool only (a spool never drops for memory). Default `'drop-oldest'`. */
  readonly onFull?: FullPolicy;
}

export interface RetryOptions {
  /** First backoff ceiling; the n-th retry waits a random time in [0, min(max, initial·2ⁿ)]. Default 200 ms. */
  readonly initialDelayMs?: number;
  /** Default 30 s. */
  readonly maxDelayMs?: number;
  /** Wait after 401/403 and other non-retriable refusals. Default 60 s. */
  readonly refusedDelayMs?: number;
  /** A request taking longer is aborted and retried. Default 30 s. */
  readonly requestTimeoutMs?: number;
}

export interface PersonalOptions {
  /**
   * JSON pointers committed in every event where they exist, on top of what the protocol always
   * commits (party ids, names, emails, IP, user agent): for example `/metadata/phone`.
   */
  readonly paths?: readonly string[];
  /** Where salts come from; tests inject fixed salts. Default: a pooled CSPRNG. */
  readonly saltSource?: SaltSource;
}

/** pino-compatible: `logger.warn({ code }, 'message')`. */
export interface AuditLogger {
  warn(data: object, message: string): void;
  error(data: object, message: string): void;
}

export interface AuditClientOptions {
  /** Collector base URL, such as `https://audit.example.eu`; required unless `transport` is given. */
  readonly endpoint?: string;
  /** Required unless `transport` is given. */
  readonly apiKey?: string;
  /** Name of the application; the stream id and the actor of `stream.opened` derive from it. */
  readonly service: string;
  /**
   * Stream id. Default `<service>/<hostname>/<UUIDv7 drawn at start>`, unique across replicas
   * and restarts; with a spool, a stream that was not closed continues after a restart.
   */
  readonly stream?: string;
  /** Host name in the default stream id. Default `os.hostname()`. */
  readonly hostname?: string;
  /** Replaces the HTTP transport (an embedded collector, a test double). */
  readonly transport?: AuditTransport;
  readonly spool?: SpoolOptions;
  readonly batch?: BatchOptions;
  readonly queue?: QueueOptions;
  /** gzip request bodies (HTTP transport). Default false: on a LAN the CPU costs more than the bytes. */
  readonly gzip?: boolean;
  readonly retry?: RetryOptions;
  readonly personal?: PersonalOptions;
  /** NDJSON file of events the collector refused. Default `<spool.dir>/dead-letter.ndjson`; none without a spool. */
  readonly deadLetterFile?: string;
  /** Where problems are reported when no `error` listener is attached; `false` for silence. Default: stderr. */
  readonly logger?: AuditLogger | false;
  /**
   * Close the client (draining within `deadlineMs`, default 5 s) on SIGTERM, SIGINT and
   * `beforeExit`. Off by default: the application owns its signals.
   */
  readonly handleExitSignals?: boolean | { readonly deadlineMs?: number };
}

export interface ResolvedSpool {
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  readonly maxBytes: number;
  readonly onFull: FullPolicy;
  readonly segmentBytes: number;
}

/** Options with every default filled in, checked once and frozen. */
export interface ResolvedOptions {
  readonly endpoint: string | undefined;
  readonly apiKey: string | undefined;
  readonly service: string;
  readonly stream: string | undefined;
  readonly hostname: string | undefined;
  readonly transport: AuditTransport | undefined;
  readonly spool: ResolvedSpool | undefined;
  readonly batch: {
    readonly maxEvents: number;
    readonly maxBytes: number;
    readonly maxDelayMs: number;
  };
  readonly queue: {
    readonly maxEvents: number;
    readonly maxBytes: number;
    readonly onFull: FullPolicy;
  };
  readonly gzip: boolean;
  readonly retry: Required<RetryOptions>;
  readonly personalPaths: readonly string[];
  readonly saltSource: SaltSource | undefined;
  readonly deadLetterFile: string | undefined;
  readonly logger: AuditLogger | undefined;
  readonly exitDeadlineMs: number | undefined;
}

const FULL_POLICIES: readonly FullPolicy[] = ['block', 'drop-oldest', 'throw'];
const MiB = 1024 * 1024;

/** A service name becomes the first segment of the stream id, so it follows the stream pattern minus `/`. */
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/;

class Problems {
  readonly list: { path: string; message: string }[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
  positiveInt(path: string, value: number | undefined, fallback: number): number {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value <= 0) this.add(path, 'must be a positive integer');
    return value;
  }
  nonNegative(path: string, value: number | undefined, fallback: number): number {
    if (value === undefined) return fallback;
    if (!Number.isFinite(value) || value < 0) this.add(path, 'must be a number >= 0');
    return value;
  }
  policy(path: string, value: FullPolicy | undefined, fallback: FullPolicy): FullPolicy {
    if (value === undefined) return fallback;
    if (!FULL_POLICIES.includes(value))
      this.add(path, `must be one of: ${FULL_POLICIES.join(', ')}`);
    return value;
  }
}

/** Problems with a stream id, or `undefined` when it is usable. */
export function streamProblem(stream: string): string | undefined {
  if (!PATTERNS.stream.test(stream))
    return 'must be 1-200 characters of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit';
  const reserved = RESERVED_STREAM_PREFIXES.find((p) => stream.startsWith(p));
  if (reserved !== undefined) return `must not start with ${reserved}: Vigil writes those streams`;
  return undefined;
}

function fsyncPolicy(problems: Problems, value: FsyncPolicy | undefined): FsyncPolicy {
  if (value === undefined) return 'always';
  if (value === 'always' || value === 'none') return value;
  if (typeof value === 'object' && value !== null) {
    problems.positiveInt('/spool/fsync/groupCommitMs', value.groupCommitMs, 1);
    return { groupCommitMs: value.groupCommitMs };
  }
  problems.add('/spool/fsync', "must be 'always', 'none' or { groupCommitMs }");
  return 'always';
}

/** Checks options once at creation; throws `InvalidOptionsError` listing every problem. */
export function resolveOptions(options: AuditClientOptions): ResolvedOptions {
  const p = new Problems();
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('createAuditClient needs an options object');
  }
  if (typeof options.service !== 'string' || !SERVICE.test(options.service)) {
    p.add(
      '/service',
      'must be 1-100 characters of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit',
    );
  } else if (RESERVED_STREAM_PREFIXES.some((r) => `${options.service}/`.startsWith(r))) {
    p.add('/service', 'must not be vigil or key: streams of that name are written by Vigil itself');
  }
  if (options.transport === undefined) {
    if (typeof options.endpoint !== 'string') {
      p.add('/endpoint', 'is required unless a transport is given');
    } else {
      try {
        const url = new URL(options.endpoint);
        if (url.protocol !== 'http:' && url.protocol !== 'https:')
          p.add('/endpoint', 'must be an http or https URL');
      } catch {
        p.add('/endpoint', 'must be a URL such as https://audit.example.eu');
      }
    }
    if (typeof options.apiKey !== 'string' || options.apiKey.length === 0) {
      p.add('/apiKey', 'is required unless a transport is given');
    }
  } else if (typeof options.transport.send !== 'function') {
    p.add('/transport', 'must have a send(batch, signal) method');
  }
  if (options.stream !== undefined) {
    const problem = streamProblem(options.stream);
    if (problem !== undefined) p.add('/stream', problem);
  }
  const batch = {
    maxEvents: p.positiveInt('/batch/maxEvents', options.batch?.maxEvents, 1000),
    maxBytes: p.positiveInt('/batch/maxBytes', options.batch?.maxBytes, MiB),
    maxDelayMs: p.nonNegative('/batch/maxDelayMs', options.batch?.maxDelayMs, 200),
  };
  const queue = {
    maxEvents: p.positiveInt('/queue/maxEvents', options.queue?.maxEvents, 20_000),
    maxBytes: p.positiveInt('/queue/maxBytes', options.queue?.maxBytes, 32 * MiB),
    onFull: p.policy('/queue/onFull', options.queue?.onFull, 'drop-oldest'),
  };
  const retry = {
    initialDelayMs: p.positiveInt('/retry/initialDelayMs', options.retry?.initialDelayMs, 200),
    maxDelayMs: p.positiveInt('/retry/maxDelayMs', options.retry?.maxDelayMs, 30_000),
    refusedDelayMs: p.positiveInt('/retry/refusedDelayMs', options.retry?.refusedDelayMs, 60_000),
    requestTimeoutMs: p.positiveInt(
      '/retry/requestTimeoutMs',
      options.retry?.requestTimeoutMs,
      30_000,
    ),
  };
  let spool: ResolvedSpool | undefined;
  if (options.spool !== undefined) {
    if (typeof options.spool.dir !== 'string' || options.spool.dir.length === 0) {
      p.add('/spool/dir', 'must be a directory path');
    }
    const maxBytes = p.positiveInt('/spool/maxBytes', options.spool.maxBytes, 256 * MiB);
    const segmentBytes = p.positiveInt(
      '/spool/segmentBytes',
      options.spool.segmentBytes,
      Math.max(64 * 1024, Math.min(Math.floor(maxBytes / 8), 8 * MiB)),
    );
    // drop-oldest frees space a file at a time, so there must always be an older file to drop.
    if (segmentBytes * 4 > maxBytes)
      p.add('/spool/segmentBytes', 'must be at most a quarter of spool.maxBytes');
    spool = {
      dir: options.spool.dir,
      fsync: fsyncPolicy(p, options.spool.fsync),
      maxBytes,
      onFull: p.policy('/spool/onFull', options.spool.onFull, 'drop-oldest'),
      segmentBytes,
    };
  }
  const personalPaths = options.personal?.paths ?? [];
  personalPaths.forEach((path, i) => {
    const problem = committablePathProblem(path);
    if (problem !== undefined) p.add(`/personal/paths/${i}`, `${path} ${problem}`);
  });
  let exitDeadlineMs: number | undefined;
  if (options.handleExitSignals === true) exitDeadlineMs = 5000;
  else if (typeof options.handleExitSignals === 'object') {
    exitDeadlineMs = p.nonNegative(
      '/handleExitSignals/deadlineMs',
      options.handleExitSignals.deadlineMs,
      5000,
    );
  }
  if (p.list.length > 0) {
    throw new InvalidOptionsError(
      `invalid audit client options: ${p.list.map((d) => `${d.path} ${d.message}`).join('; ')}`,
      p.list,
    );
  }
  const logger = options.logger === false ? undefined : (options.logger ?? stderrLogger);
  return Object.freeze({
    endpoint: options.endpoint,
    apiKey: options.apiKey,
    service: options.service,
    stream: options.stream,
    hostname: options.hostname,
    transport: options.transport,
    spool: spool && Object.freeze(spool),
    batch: Object.freeze(batch),
    queue: Object.freeze(queue),
    gzip: options.gzip ?? false,
    retry: Object.freeze(retry),
    personalPaths: Object.freeze([...personalPaths]),
    saltSource: options.personal?.saltSource,
    deadLetterFile:
      options.deadLetterFile ?? (spool ? `${spool.dir}/dead-letter.ndjson` : undefined),
    logger,
    exitDeadlineMs,
  });
}

/** One JSON line per problem on stderr, so the report reaches whoever runs the process. */
const stderrLogger: AuditLogger = {
  warn(data, message) {
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', name: '@vigil/sdk', msg: message, ...data })}\n`,
    );
  },
  error(data, message) {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', name: '@vigil/sdk', msg: message, ...data })}\n`,
    );
  },
};

/** Shapes shared by the typed helpers and the framework integrations. */
export type { Party, EventContext };
