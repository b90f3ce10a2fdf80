import { isUtf8 } from 'node:buffer';
import {
  canonicalJson,
  checkBatchLinks,
  checkEventInput,
  checkFramedEvent,
  checkSealedEvent,
  formatTime,
  illFormedPath,
  isWellFormed,
  newEventId,
  parseFramedBody,
  parseTime,
  SEALED_MEDIA_TYPE,
  sha256Hex,
  stringPath,
  type BatchLinkItem,
  type ErrorDetail,
  type EventInput,
  type CheckedSealed,
  type Frame,
  firstBadUtf8,
} from '@vigil/protocol';
import type { IngestConfig } from '../stage-config.js';
import { CollectorErrorCodes } from '../errors.js';
import {
  encodeEventMessage,
  encodeSealedLines,
  EVENT_MESSAGE_VERSION,
  keyStream,
  messageKey,
  sealedHeader,
  type MessageHead,
  type UnchainedEntry,
} from '../log/event-message.js';

/**
 * The stateless checks of the collector (PROTOCOL.md §8.1, §9, §10): everything that can be
 * judged from one request alone, as a pure function of its body. It runs on the main thread or
 * in a worker thread (check-worker.ts) — hence plain data in and out, errors included.
 */

export type CheckLimits = Pick<
  IngestConfig,
  'maxEvents' | 'maxRecordBytes' | 'clockSkewMs' | 'backfillAfterMs'
>;

export interface CheckContext {
  readonly tenantId: string;
  readonly keyId: string;
  /** Collector's clock when the request arrived (epoch ms). */
  readonly receivedAt: number;
  readonly limits: CheckLimits;
}

/** A log message ready to append: all events of one stream from one request. */
export interface EncodedMessage {
  readonly key: string;
  readonly value: Uint8Array;
  readonly timestamp: number;
  readonly kind: 'sealed' | 'unchained';
}

export interface CheckedBatch {
  readonly ok: true;
  /** Per event, in request order: its id, fingerprint (hash, or `u:` + digest), message and slot in it. */
  readonly ids: string[];
  readonly fingerprints: string[];
  readonly messageOf: number[];
  readonly slotOf: number[];
  readonly messages: EncodedMessage[];
}

/** A refusal as plain data (it may cross a worker boundary). */
export interface RefusedBatch {
  readonly ok: false;
  readonly code: string;
  readonly status: number;
  readonly message: string;
  readonly details: ErrorDetail[];
  /** Events in the refused batch, once the body parsed (0 when it did not). */
  readonly events?: number;
}

export type BatchCheck = CheckedBatch | RefusedBatch;

function refuse(
  code: string,
  status: number,
  message: string,
  details: ErrorDetail[] = [],
  events = 0,
): RefusedBatch {
  return { ok: false, code, status, message, details, events };
}

/**
 * Parses a request body as `{"events":[…]}`, a JSON array, or NDJSON (one event per line).
 * Plain JSON.parse: the result is checked against the protocol right after, and JSON.parse
 * itself never touches prototypes.
 */
export function parseEventsBody(body: Uint8Array, contentType: string): unknown[] | RefusedBatch {
  const parsed = parseBody(body, contentType.toLowerCase());
  return Array.isArray(parsed) ? parsed : 'ok' in parsed ? parsed : parsed.events;
}

interface ParsedBody {
  readonly events: unknown[];
}

function parseBody(body: Uint8Array, contentType: string): unknown[] | ParsedBody | RefusedBatch {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // The body is UTF-8 (PROTOCOL.md §9): a decoder would turn bad bytes into U+FFFD, and the event
  // would be stored as something its sender never wrote. isUtf8 is simdutf in Node's core, a
  // small fraction of the cost of the JSON.parse that follows.
  if (!isUtf8(bytes)) return refuseBadUtf8(bytes, contentType);
  return parseText(bytes.toString('utf8'), contentType);
}

function parseText(text: string, contentType: string): unknown[] | ParsedBody | RefusedBatch {
  if (
    contentType.startsWith('application/x-ndjson') ||
    contentType.startsWith('application/jsonl')
  ) {
    const events: unknown[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim();
      if (line === '') continue;
      try {
        events.push(JSON.parse(line));
      } catch (error) {
        const message = `line ${i + 1} is not JSON: ${(error as Error).message}`;
        return refuse(CollectorErrorCodes.BAD_REQUEST, 400, message, [
          { index: events.length, path: '', message },
        ]);
      }
    }
    return events;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const message = `the body is not JSON: ${(error as Error).message}`;
    return refuse(CollectorErrorCodes.BAD_REQUEST, 400, message, [{ path: '', message }]);
  }
  if (Array.isArray(parsed)) return parsed as unknown[];
  const events = (parsed as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) {
    const message = 'must be {"events":[…]}, a JSON array, or NDJSON';
    return refuse(CollectorErrorCodes.BAD_REQUEST, 400, message, [{ path: '/events', message }]);
  }
  return { events };
}

/** Whether a Content-Type names the sealed framing (PROTOCOL.md §9), parameters aside. */
export function isSealedFraming(contentType: string): boolean {
  const type = contentType.toLowerCase();
  if (!type.startsWith(SEALED_MEDIA_TYPE)) return false;
  const rest = type.slice(SEALED_MEDIA_TYPE.length).trimStart();
  return rest === '' || rest.startsWith(';');
}

export function checkBody(
  body: Uint8Array,
  contentType: string,
  context: CheckContext,
): BatchCheck {
  if (isSealedFraming(contentType)) return checkFramedBody(body, context);
  // Media types are case-insensitive (RFC 9110 §8.3.1).
  const type = contentType.toLowerCase();
  const parsed = parseBody(body, type);
  if (Array.isArray(parsed)) return checkBatch(parsed, context);
  if ('ok' in parsed) return parsed;
  return checkBatch(parsed.events, context);
}

const UNKNOWN_LINK = { stream: '\u0000unknown', seq: -1, prev: '', hash: '' } as const;

/**
 * A body of the sealed framing (PROTOCOL.md §9): split into lines without decoding, each record
 * hashed where it lies and parsed once (checkFramedEvent). An accepted batch goes to the log as
 * the producer's lines, verbatim.
 */
function checkFramedBody(body: Uint8Array, context: CheckContext): BatchCheck {
  const bytes = Buffer.isBuffer(body)
    ? body
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const { limits } = context;
  const { frames, details, lines } = parseFramedBody(bytes);
  const size = sizeProblem(lines, limits.maxEvents);
  if (size) return size;
  const pending: Pending[] = [];
  const links: BatchLinkItem[] = [];
  // A line that is not three fields has no readable position: no link of the batch is judged.
  for (const d of details) links.push({ index: d.index as number, ...UNKNOWN_LINK });
  for (const frame of frames) checkFrame(frame, context, details, pending, links);
  return finish(lines, details, pending, links, context, contiguous(bytes, frames));
}

/**
 * The body itself when its lines are all the batch's events, back to back with single LFs (no
 * blank line, no CR): the log record then takes the body in one copy instead of line by line.
 */
function contiguous(body: Buffer, frames: readonly Frame[]): Buffer | undefined {
  let at = body.byteOffset;
  for (const f of frames) {
    if (f.line.byteOffset !== at) return undefined;
    at += f.line.length + 1;
  }
  const end = body.byteOffset + body.length;
  if (at === end) return body;
  if (at === end + 1) return Buffer.concat([body, Buffer.from('\n')]);
  return undefined;
}

function frameLink(frame: Frame, index: number): BatchLinkItem | undefined {
  return claimedLink({ record: frame.record.toString('utf8'), hash: frame.hash }, index);
}

function checkFrame(
  frame: Frame,
  context: CheckContext,
  details: ErrorDetail[],
  pending: Pending[],
  links: BatchLinkItem[],
): void {
  const { index } = frame;
  const { maxRecordBytes } = context.limits;
  if (frame.record.length > maxRecordBytes) {
    details.push({
      index,
      path: '/record',
      message: `is ${frame.record.length} bytes; the limit is ${maxRecordBytes}`,
    });
    links.push(frameLink(frame, index) ?? { index, ...UNKNOWN_LINK });
    return;
  }
  const checked = checkFramedEvent(frame);
  if (!checked.ok) {
    details.push(...checked.details);
    links.push(frameLink(frame, index) ?? { index, ...UNKNOWN_LINK });
    return;
  }
  accept(checked.value, frame.line, index, context, details, pending, links);
}

/**
 * Marks where a body's first invalid UTF-8 lies, to find the event and field it is in. It holds
 * noncharacters (U+FDD0, U+FDD1) and no JSON syntax, so inside a string it parses as text.
 */
const BAD_UTF8_MARK = '\uFDD0vigil:bad-utf-8\uFDD1';

/**
 * Refuses a body that is not UTF-8, naming the event (and the field, where it can be found)
 * that holds the first bad bytes. Only on that error path: neither isUtf8 nor a fatal
 * TextDecoder tells where the bad bytes are. Valid UTF-8 decodes and encodes back byte for
 * byte, so the first byte where the lenient decoding, encoded again, differs from the body is
 * at (or within the same bad sequence as) the first bad byte; the mark is put there, in the
 * decoded text, which is then parsed as usual.
 */
function refuseBadUtf8(bytes: Buffer, contentType: string): RefusedBatch {
  const text = bytes.toString('utf8');
  const same = firstBadUtf8(bytes);
  const at = bytes.subarray(0, same).toString('utf8').length;
  const where = `byte ${same} of the body`;
  const message = `is not valid UTF-8 (${where}): send UTF-8 text`;
  const plain = (index?: number): RefusedBatch =>
    refuse(CollectorErrorCodes.BAD_REQUEST, 400, `the body is not valid UTF-8 (${where})`, [
      index === undefined ? { path: '', message } : { index, path: '', message },
    ]);
  if (text.includes(BAD_UTF8_MARK)) return plain();
  const parsed = parseText(text.slice(0, at) + BAD_UTF8_MARK + text.slice(at), contentType);
  const events = Array.isArray(parsed) ? parsed : 'ok' in parsed ? undefined : parsed.events;
  if (events === undefined) {
    // The bad bytes are outside a JSON string, or the body is not JSON at all. In NDJSON the
    // line still tells the event.
    const index =
      'ok' in (parsed as object) ? (parsed as RefusedBatch).details[0]?.index : undefined;
    return plain(index);
  }
  for (let index = 0; index < events.length; index++) {
    const path = stringPath(events[index], (s) => s.includes(BAD_UTF8_MARK));
    if (path !== undefined) {
      return refuse(
        CollectorErrorCodes.INVALID_BATCH,
        400,
        `event ${index} is not valid UTF-8 (${where}); nothing of this batch was stored`,
        [{ index, path, message }],
        events.length,
      );
    }
  }
  return plain();
}

interface Pending {
  readonly index: number;
  readonly id: string;
  readonly fingerprint: string;
  readonly stream: string;
  /** A sealed event's line of the framing, without its LF: what the log record holds. */
  readonly line?: Uint8Array;
  readonly unchained?: UnchainedEntry;
}

/** Stream, seq, prev and claimed hash of a sealed event that failed its checks, if readable. */
function claimedLink(event: object, index: number): BatchLinkItem | undefined {
  const { record, hash } = event as { record?: unknown; hash?: unknown };
  if (typeof record !== 'string' || typeof hash !== 'string') return undefined;
  try {
    const r = JSON.parse(record) as { stream?: unknown; seq?: unknown; prev?: unknown };
    if (typeof r.stream === 'string' && typeof r.seq === 'number' && typeof r.prev === 'string') {
      return { index, stream: r.stream, seq: r.seq, prev: r.prev, hash };
    }
  } catch {
    // unreadable: reported by the checks already
  }
  return undefined;
}

function sizeProblem(count: number, maxEvents: number): RefusedBatch | undefined {
  if (count === 0) {
    return refuse(CollectorErrorCodes.INVALID_BATCH, 400, 'the batch holds no events', [
      { path: '/events', message: 'must hold at least one event' },
    ]);
  }
  if (count > maxEvents) {
    return refuse(
      CollectorErrorCodes.TOO_MANY_EVENTS,
      413,
      `the batch holds ${count} events; the limit is ${maxEvents}: send smaller batches`,
      [],
      count,
    );
  }
  return undefined;
}

/**
 * Checks a parsed batch. All or nothing: any bad event refuses the batch with every problem
 * listed. On success, the events are already encoded as log messages, one per stream.
 */
export function checkBatch(events: readonly unknown[], context: CheckContext): BatchCheck {
  const size = sizeProblem(events.length, context.limits.maxEvents);
  if (size) return size;
  const details: ErrorDetail[] = [];
  const pending: Pending[] = [];
  const links: BatchLinkItem[] = [];
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    if (typeof event === 'object' && event !== null && 'record' in event) {
      checkSealed(event, index, context, details, pending, links);
    } else {
      checkUnchained(event, index, context, details, pending);
    }
  }
  return finish(events.length, details, pending, links, context, undefined);
}

/** Link checks within the batch, then the refusal or the log messages (PROTOCOL.md §8.2). */
function finish(
  count: number,
  details: ErrorDetail[],
  pending: readonly Pending[],
  links: readonly BatchLinkItem[],
  context: CheckContext,
  body: Buffer | undefined,
): BatchCheck {
  // An unreadable sealed event hides where its stream stands; link errors would be guesses.
  if (!links.some((l) => l.seq === -1)) {
    // A link error right after an event already reported is that event's fault, not its
    // successor's: report each bad event once.
    const reported = new Set(details.map((d) => d.index));
    const predecessor = new Map<number, number>();
    const lastOfStream = new Map<string, number>();
    for (const l of links) {
      const before = lastOfStream.get(l.stream);
      if (before !== undefined) predecessor.set(l.index, before);
      lastOfStream.set(l.stream, l.index);
    }
    for (const d of checkBatchLinks(links)) {
      const index = d.index as number;
      const before = predecessor.get(index);
      if (!reported.has(index) && (before === undefined || !reported.has(before))) details.push(d);
    }
  }
  if (details.length > 0) {
    details.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    const bad = new Set(details.map((d) => d.index)).size;
    return refuse(
      CollectorErrorCodes.INVALID_BATCH,
      400,
      `${bad} of ${count} events are invalid; nothing of this batch was stored`,
      details,
      count,
    );
  }
  return encode(pending, context, body);
}

const LONE_SURROGATE =
  'holds a lone surrogate (a \\ud800-\\udfff escape without its pair): not well-formed Unicode, it has no UTF-8 form';

/** Whether `timeMs` is acceptable: pushes a detail when it is too far ahead of the collector's clock. */
function checkTime(
  timeMs: number,
  path: string,
  index: number,
  context: CheckContext,
  details: ErrorDetail[],
): void {
  const { receivedAt, limits } = context;
  const ahead = timeMs - receivedAt;
  if (ahead > limits.clockSkewMs) {
    details.push({
      index,
      path,
      message: `is ${Math.round(ahead / 1000)} s ahead of the collector's clock (${formatTime(receivedAt)}); the limit is ${limits.clockSkewMs / 1000} s: check the producer's clock`,
    });
  }
}

function checkSealed(
  event: object,
  index: number,
  context: CheckContext,
  details: ErrorDetail[],
  pending: Pending[],
  links: BatchLinkItem[],
): void {
  const { maxRecordBytes } = context.limits;
  const record = (event as { record?: unknown }).record;
  if (typeof record === 'string' && record.length > maxRecordBytes) {
    const bytes = Buffer.byteLength(record, 'utf8');
    if (bytes > maxRecordBytes) {
      details.push({
        index,
        path: '/record',
        message: `is ${bytes} bytes; the limit is ${maxRecordBytes}`,
      });
      links.push(
        claimedLink(event, index) ?? {
          index,
          stream: '\u0000unknown',
          seq: -1,
          prev: '',
          hash: '',
        },
      );
      return;
    }
  }
  // A lone surrogate (an escape \ud800-\udfff without its pair) has no UTF-8 form: hashed, it
  // would be read as U+FFFD, so two different record strings would share one hash (§2, §9).
  if (typeof record === 'string' && !isWellFormed(record)) {
    details.push({ index, path: '/record', message: LONE_SURROGATE });
    links.push(
      claimedLink(event, index) ?? { index, stream: '\u0000unknown', seq: -1, prev: '', hash: '' },
    );
    return;
  }
  const checked = checkSealedEvent(event, index);
  if (!checked.ok) {
    details.push(...checked.details);
    // Keep its claimed position in the stream, so that the events after it are not also
    // reported as broken links: the problem is this event, not its successors.
    links.push(
      claimedLink(event, index) ?? { index, stream: '\u0000unknown', seq: -1, prev: '', hash: '' },
    );
    return;
  }
  const { event: sealed } = checked.value;
  // Every sealed event goes to the log as a line of the framing (PROTOCOL.md §9), which a raw
  // TAB, LF or CR in the record would break. RFC 8785 text never holds one (§4).
  if (/[\t\n\r]/.test(sealed.record)) {
    const { record: parsed } = checked.value;
    details.push({
      index,
      path: '/record',
      message: 'holds a raw TAB, LF or CR: not RFC 8785 text (§4)',
    });
    links.push({
      index,
      stream: parsed.stream,
      seq: parsed.seq,
      prev: parsed.prev,
      hash: sealed.hash,
    });
    return;
  }
  const line = Buffer.from(
    `${sealed.record}\t${sealed.hash}\t${sealed.disclosures ? JSON.stringify(sealed.disclosures) : ''}`,
    'utf8',
  );
  accept(checked.value, line, index, context, details, pending, links);
}

/** The checks after §8.1 of an event that passed them, then its place in the batch. */
function accept(
  checked: CheckedSealed,
  line: Uint8Array,
  index: number,
  context: CheckContext,
  details: ErrorDetail[],
  pending: Pending[],
  links: BatchLinkItem[],
): void {
  const { record: parsed, timeMs, event: sealed } = checked;
  const link = {
    index,
    stream: parsed.stream,
    seq: parsed.seq,
    prev: parsed.prev,
    hash: sealed.hash,
  };
  links.push(link);
  // Nor may the record text hold one, escaped (§2). RFC 8785 writes no \u escape but for
  // control characters, so only a record with `\u` in it (rare in canonical form) is walked.
  if (sealed.record.includes('\\u')) {
    const path = illFormedPath(parsed);
    if (path !== undefined) {
      details.push({ index, path: `/record${path}`, message: LONE_SURROGATE });
      return;
    }
  }
  checkTime(timeMs, '/record/time', index, context, details);
  pending.push({ index, id: parsed.id, fingerprint: sealed.hash, stream: parsed.stream, line });
}

function checkUnchained(
  event: unknown,
  index: number,
  context: CheckContext,
  details: ErrorDetail[],
  pending: Pending[],
): void {
  const checked = checkEventInput(event, index);
  if (!checked.ok) {
    details.push(...checked.details);
    return;
  }
  const input = checked.value;
  let canonical: string;
  try {
    canonical = canonicalJson(input);
  } catch (error) {
    // Name the field that has no RFC 8785 form where it is a lone surrogate.
    const path = illFormedPath(input);
    details.push(
      path === undefined
        ? { index, path: '', message: (error as Error).message }
        : { index, path, message: LONE_SURROGATE },
    );
    return;
  }
  const bytes = Buffer.byteLength(canonical, 'utf8');
  if (bytes > context.limits.maxRecordBytes) {
    details.push({
      index,
      path: '',
      message: `is ${bytes} bytes; the limit is ${context.limits.maxRecordBytes}`,
    });
    return;
  }
  const { receivedAt } = context;
  const timeMs = input.time === undefined ? receivedAt : (parseTime(input.time) as number);
  checkTime(timeMs, '/time', index, context, details);
  const digest = sha256Hex(canonical);
  const complete: EventInput & { id: string; time: string } = {
    ...input,
    id: input.id ?? newEventId(receivedAt),
    time: input.time ?? formatTime(receivedAt),
  };
  pending.push({
    index,
    id: complete.id,
    fingerprint: 'u:' + digest,
    stream: keyStream(context.keyId),
    unchained: { input: complete, digest },
  });
}

/** One log message per stream, events in request order. */
function encode(
  pending: readonly Pending[],
  context: CheckContext,
  body: Buffer | undefined,
): CheckedBatch {
  const groups = new Map<
    string,
    {
      stream: string;
      kind: 'sealed' | 'unchained';
      lines: Uint8Array[];
      unchained: UnchainedEntry[];
    }
  >();
  const ids: string[] = [];
  const fingerprints: string[] = [];
  const groupOf: string[] = [];
  const slotOf: number[] = [];
  for (const p of pending) {
    const kind = p.line ? 'sealed' : 'unchained';
    const groupKey = kind + '\u0000' + p.stream;
    let group = groups.get(groupKey);
    if (!group)
      groups.set(groupKey, (group = { stream: p.stream, kind, lines: [], unchained: [] }));
    ids.push(p.id);
    fingerprints.push(p.fingerprint);
    groupOf.push(groupKey);
    if (p.line) slotOf.push(group.lines.push(p.line) - 1);
    else if (p.unchained) slotOf.push(group.unchained.push(p.unchained) - 1);
  }
  const head = {
    v: EVENT_MESSAGE_VERSION as typeof EVENT_MESSAGE_VERSION,
    tenant: context.tenantId,
    keyId: context.keyId,
    receivedAt: context.receivedAt,
    backfillBefore: context.receivedAt - context.limits.backfillAfterMs,
  };
  const messages: EncodedMessage[] = [];
  const indexOfGroup = new Map<string, number>();
  for (const [groupKey, g] of groups) {
    const streamHead: MessageHead = { ...head, stream: g.stream };
    let value: Buffer;
    if (g.kind === 'unchained') {
      value = encodeEventMessage({ ...streamHead, kind: 'unchained', events: g.unchained });
    } else if (body && groups.size === 1) {
      // The request is one stream of framed events, as the SDK sends them: the body goes into
      // the log record as it came, in one copy.
      value = Buffer.concat([sealedHeader(streamHead), body]);
    } else {
      value = encodeSealedLines(streamHead, g.lines);
    }
    indexOfGroup.set(groupKey, messages.length);
    messages.push({
      key: messageKey(context.tenantId, g.stream),
      value,
      timestamp: context.receivedAt,
      kind: g.kind,
    });
  }
  return {
    ok: true,
    ids,
    fingerprints,
    messageOf: groupOf.map((k) => indexOfGroup.get(k) as number),
    slotOf,
    messages,
  };
}
