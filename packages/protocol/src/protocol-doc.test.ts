import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ZERO_HASH } from './index.js';

/*
 * Keeps PROTOCOL.md §1–§12 honest about the test vectors (§11): every hash, id, salt, record and
 * example the text quotes must be one that vectors/v2.json holds, so that regenerating the
 * vectors without revising the document fails here instead of leaving the document stale.
 */

const doc = readFileSync(new URL('../../../PROTOCOL.md', import.meta.url), 'utf8');

interface VectorEvent {
  input: Record<string, unknown>;
  record: string;
  hash: string;
  disclosures?: Record<string, { salt: string; value: unknown }>;
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/v2.json', import.meta.url), 'utf8'),
) as { stream: { events: VectorEvent[] }; framing: { text: string; hex: string } } & Record<
  string,
  unknown
>;
const events = vectors.stream.events;

/** §1 up to, not including, §13: the sections written against the vectors of v2.json. */
function sectionsOneToTwelve(text: string): string {
  const start = text.indexOf('\n## §1 ');
  const end = text.indexOf('\n## §13 ');
  if (start < 0 || end < start) throw new Error('PROTOCOL.md has no "## §1 " … "## §13 " headings');
  return text.slice(start, end);
}

const spec = sectionsOneToTwelve(doc);

/** Every string in a JSON value (object keys included), and the values of its `salt` members. */
function stringsOf(value: unknown, out: string[], salts: string[]): void {
  if (typeof value === 'string') {
    out.push(value);
  } else if (Array.isArray(value)) {
    for (const item of value) stringsOf(item, out, salts);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, member] of Object.entries(value)) {
      out.push(key);
      if (key === 'salt' && typeof member === 'string') salts.push(member);
      stringsOf(member, out, salts);
    }
  }
}

const vectorStrings: string[] = [];
const vectorSalts: string[] = [];
stringsOf(vectors, vectorStrings, vectorSalts);

// Runs that stand alone: not part of a longer word (hashes sit between quotes, backticks, blanks).
const HEX_RUN = /(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])/g;
const UUID =
  /(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])/g;
const ABBREVIATED_HASH = /(?<![0-9A-Za-z])([0-9a-f]{8})…/g;

function allMatches(text: string, pattern: RegExp, group = 0): string[] {
  return [...text.matchAll(pattern)].map((m) => m[group] as string);
}

const vectorHashes = new Set(vectorStrings.flatMap((s) => allMatches(s, HEX_RUN)));
const vectorUuids = new Set(vectorStrings.flatMap((s) => allMatches(s, UUID)));
const vectorHexTexts = vectorStrings.filter((s) => /^[0-9a-f]+$/.test(s));
const saltHexes = new Set(vectorSalts.map((s) => Buffer.from(s, 'base64url').toString('hex')));

/** The text of every fenced code block of §1–§12. */
const codeBlocks = allMatches(spec, /```[a-z]*\n([\s\S]*?)```/g, 1);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

describe('PROTOCOL.md §1–§12 quotes the current test vectors', () => {
  it('writes only 64-hex values that v2.json holds (or the zero hash)', () => {
    const quoted = allMatches(spec, HEX_RUN).filter((h) => h.length === 64);
    expect(quoted.length).toBeGreaterThan(20);
    const unknown = quoted.filter((h) => h !== ZERO_HASH && !vectorHashes.has(h));
    expect(unknown, 'hashes in PROTOCOL.md that v2.json does not hold').toEqual([]);
  });

  it('writes only UUIDs that v2.json holds', () => {
    const quoted = allMatches(spec, UUID);
    expect(quoted.length).toBeGreaterThanOrEqual(4);
    expect(
      quoted.filter((u) => !vectorUuids.has(u)),
      'UUIDs in PROTOCOL.md that v2.json does not hold',
    ).toEqual([]);
  });

  it('abbreviates only hashes that v2.json holds', () => {
    const hashes = [...vectorHashes];
    const quoted = allMatches(spec, ABBREVIATED_HASH, 1);
    expect(quoted.length).toBeGreaterThan(5);
    expect(quoted.filter((prefix) => !hashes.some((h) => h.startsWith(prefix)))).toEqual([]);
  });

  it('writes salts, salt bytes and preimages that v2.json holds', () => {
    const salts = [
      ...allMatches(spec, /"salt":\s*"([A-Za-z0-9_-]+)"/g, 1),
      ...allMatches(spec, /\bsalt\s+`([A-Za-z0-9_-]{22,86})`/g, 1),
      ...saltColumn(spec),
    ];
    expect(salts.length).toBeGreaterThanOrEqual(7);
    expect(salts.filter((s) => !vectorSalts.includes(s))).toEqual([]);
    // 32 hex digits are 16 bytes: a salt, or a piece of a preimage the file spells out.
    const short = allMatches(spec, HEX_RUN).filter((h) => h.length === 32);
    expect(short.length).toBeGreaterThanOrEqual(7);
    expect(
      short.filter((h) => !saltHexes.has(h) && !vectorHexTexts.some((t) => t.includes(h))),
    ).toEqual([]);
    const long = allMatches(spec, HEX_RUN).filter((h) => h.length > 64);
    expect(long.length).toBeGreaterThanOrEqual(1);
    expect(long.filter((h) => !vectorHexTexts.includes(h))).toEqual([]);
  });

  it('shows records, bodies, inputs and disclosures exactly as v2.json has them', () => {
    let checked = 0;
    for (const block of codeBlocks) {
      for (const text of [block, ...block.split('\n')]) {
        const value = parseJson(text.trim());
        if (!isObject(value)) continue;
        if (Array.isArray(value['events'])) {
          for (const e of value['events']) {
            if (!isObject(e) || typeof e['record'] !== 'string') continue;
            expect(events.some((v) => v.record === e['record'] && v.hash === e['hash'])).toBe(true);
            checked++;
          }
        } else if ('v' in value && 'stream' in value && 'seq' in value) {
          expect(events.map((v) => v.record)).toContain(text.trim());
          checked++;
        } else if ('id' in value && 'time' in value && 'action' in value) {
          expect(events.map((v) => v.input)).toContainEqual(value);
          checked++;
        } else if (Object.keys(value).every((k) => k.startsWith('/'))) {
          for (const [path, disclosure] of Object.entries(value)) {
            expect(events.map((v) => v.disclosures?.[path])).toContainEqual(disclosure);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });

  it('shows framed lines (§9) exactly as the framing vector has them', () => {
    const framed = codeBlocks
      .flatMap((block) => block.split('\n'))
      .filter((line) => line.includes('<TAB>') && line.startsWith('{'));
    expect(framed.length).toBeGreaterThanOrEqual(1);
    const lines = vectors.framing.text.split('\n');
    for (const line of framed) expect(lines).toContain(line.replaceAll('<TAB>', '\t'));
    const size = /`framing.hex` \((\d+) bytes/.exec(spec)?.[1];
    expect(Number(size)).toBe(Buffer.from(vectors.framing.hex, 'hex').length);
    const second = /Event 1's line, [^.]*starts at byte (\d+)/.exec(spec.replace(/\s+/g, ' '))?.[1];
    expect(Number(second)).toBe(Buffer.byteLength(lines[0] as string) + 1);
  });

  it('gives each stream event of §11 its action, hash and record length', () => {
    const rows = [
      ...spec.matchAll(/^\| (\d+) +\| `([a-z._]+)` +\| `([0-9a-f]{64})` +\| (\d+) +\|/gm),
    ];
    expect(rows).toHaveLength(events.length);
    for (const [, seq, action, hash, bytes] of rows) {
      const event = events[Number(seq)] as VectorEvent;
      expect({ action, hash, bytes: Number(bytes) }).toEqual({
        action: event.input['action'],
        hash: event.hash,
        bytes: Buffer.byteLength(event.record, 'utf8'),
      });
    }
  });
});

/** The cells of every table column headed "`salt` (base64url)", without their backticks. */
function saltColumn(text: string): string[] {
  const out: string[] = [];
  let column = -1;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      column = -1;
      continue;
    }
    const cells = line.split('|').map((c) => c.trim());
    const header = cells.indexOf('`salt` (base64url)');
    if (header >= 0) {
      column = header;
      continue;
    }
    const cell = column >= 0 ? cells[column] : undefined;
    const salt = cell?.match(/^`([A-Za-z0-9_-]+)`$/)?.[1];
    if (salt !== undefined) out.push(salt);
  }
  return out;
}
