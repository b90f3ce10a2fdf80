import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkBatchLinks,
  checkFramedEvent,
  checkSealedEvent,
  commitmentOf,
  frameSealedEvents,
  parseFramedBody,
  SEALED_MEDIA_TYPE,
  judgeLink,
  parsePointer,
  sealEvent,
  ZERO_HASH,
  type Disclosures,
  type EventInput,
  type SaltSource,
  type StreamHead,
} from './index.js';

interface VectorEvent {
  input: EventInput & { id: string; time: string };
  link: { stream: string; seq: number; prev: string };
  record: string;
  hash: string;
  disclosures?: Disclosures;
}
interface Vectors {
  protocol: number;
  zeroHash: string;
  commitment: {
    path: string;
    value: string;
    salt: string;
    preimageHex: string;
    commitment: string;
  };
  canonical: { input: unknown; output: string }[];
  stream: { id: string; events: VectorEvent[] };
  chainCases: {
    name: string;
    head: StreamHead | null;
    seq: number;
    prev: string;
    verdict: string;
  }[];
  framing: {
    mediaType: string;
    text: string;
    hex: string;
    sha256: string;
    lines: {
      index: number;
      recordStart: number;
      recordLength: number;
      hash: string;
      disclosuresLength: number;
    }[];
  };
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/v2.json', import.meta.url), 'utf8'),
) as Vectors;

/**
 * A second, deliberately plain implementation of PROTOCOL.md §5 written from the text of the
 * spec, so the vectors are checked by something other than the code that made them.
 */
function specCommitment(path: string, canonicalValue: string, salt: Buffer): string {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const p = Buffer.from(path, 'utf8');
  const v = Buffer.from(canonicalValue, 'utf8');
  return createHash('sha256')
    .update(Buffer.from('vigil.commitment.v1', 'ascii'))
    .update(Buffer.from([0]))
    .update(u32(salt.length))
    .update(salt)
    .update(u32(p.length))
    .update(p)
    .update(u32(v.length))
    .update(v)
    .digest('hex');
}

function valueAt(root: unknown, path: string): unknown {
  let node = root as Record<string, unknown> | undefined;
  for (const token of parsePointer(path) ?? []) node = node?.[token] as Record<string, unknown>;
  return node;
}

describe('protocol v2 test vectors', () => {
  it('is version 2 with a zero hash of 32 zero bytes', () => {
    expect(vectors.protocol).toBe(2);
    expect(vectors.zeroHash).toBe(ZERO_HASH);
    expect(Buffer.from(ZERO_HASH, 'hex')).toEqual(Buffer.alloc(32));
  });

  it('shows one commitment byte for byte', () => {
    const c = vectors.commitment;
    const salt = Buffer.from(c.salt, 'base64url');
    expect(salt).toHaveLength(16);
    const preimage = Buffer.from(c.preimageHex, 'hex');
    expect(createHash('sha256').update(preimage).digest('hex')).toBe(c.commitment);
    expect(specCommitment(c.path, JSON.stringify(c.value), salt)).toBe(c.commitment);
    expect(commitmentOf(c.path, c.value, salt)).toBe(c.commitment);
  });

  it('canonicalises as RFC 8785 does', () => {
    for (const { input, output } of vectors.canonical) expect(canonicalJson(input)).toBe(output);
  });

  describe.each(vectors.stream.events.map((e, i) => [i, e] as const))('event %i', (i, e) => {
    it('hash is SHA-256 of the exact record bytes', () => {
      expect(createHash('sha256').update(Buffer.from(e.record, 'utf8')).digest('hex')).toBe(e.hash);
    });

    it('record bytes are RFC 8785 canonical', () => {
      expect(canonicalJson(JSON.parse(e.record))).toBe(e.record);
    });

    it('links to the previous event', () => {
      const prev = i === 0 ? ZERO_HASH : (vectors.stream.events[i - 1] as VectorEvent).hash;
      const record = JSON.parse(e.record) as {
        seq: number;
        prev: string;
        stream: string;
        v: number;
      };
      expect(record).toMatchObject({ v: 2, seq: i, prev, stream: vectors.stream.id });
    });

    it('every disclosure opens its commitment, and opening them all gives back the input', () => {
      const record = JSON.parse(e.record) as Record<string, unknown>;
      const opened = JSON.parse(e.record) as Record<string, unknown>;
      for (const [path, d] of Object.entries(e.disclosures ?? {})) {
        const salt = Buffer.from(d.salt, 'base64url');
        expect(valueAt(record, path)).toBe(specCommitment(path, canonicalJson(d.value), salt));
        const tokens = parsePointer(path) as string[];
        const parent = valueAt(opened, '/' + tokens.slice(0, -1).join('/')) as Record<
          string,
          unknown
        >;
        parent[tokens[tokens.length - 1] as string] = d.value;
      }
      const { personal: _p, ...inputContent } = e.input;
      const { v: _v, stream: _s, seq: _q, prev: _r, personal: _l, ...openedContent } = opened;
      expect(openedContent).toEqual(inputContent);
    });

    it('is reproduced by sealEvent with the same salts', () => {
      const paths = Object.keys(e.disclosures ?? {}).sort();
      let n = 0;
      const salts: SaltSource = {
        salt: () =>
          Buffer.from((e.disclosures as Disclosures)[paths[n++] as string]!.salt, 'base64url'),
      };
      const { event } = sealEvent(e.input, e.link, salts);
      expect(event.record).toBe(e.record);
      expect(event.hash).toBe(e.hash);
      expect(event.disclosures ?? {}).toEqual(e.disclosures ?? {});
    });

    it('passes the collector checks', () => {
      const checked = checkSealedEvent(
        { record: e.record, hash: e.hash, disclosures: e.disclosures },
        i,
      );
      expect(checked).toMatchObject({ ok: true });
    });
  });

  it('frames the four events as one body of lines (PROTOCOL.md §9)', () => {
    const { framing } = vectors;
    const body = Buffer.from(framing.hex, 'hex');
    expect(framing.mediaType).toBe(SEALED_MEDIA_TYPE);
    expect(body.toString('utf8')).toBe(framing.text);
    expect(createHash('sha256').update(body).digest('hex')).toBe(framing.sha256);
    // Written from §9 alone: split at LF, then at the two TABs.
    const lines = framing.text.split('\n');
    expect(lines.pop()).toBe('');
    const events = vectors.stream.events;
    expect(lines.map((l) => l.split('\t'))).toEqual(
      events.map((e) => [e.record, e.hash, e.disclosures ? JSON.stringify(e.disclosures) : '']),
    );
    expect(frameSealedEvents(events)).toBe(framing.text);
    const { frames, details } = parseFramedBody(body);
    expect(details).toEqual([]);
    expect(
      frames.map((f, index) => ({
        index,
        recordStart: f.record.byteOffset - body.byteOffset,
        recordLength: f.record.length,
        hash: f.hash,
        disclosuresLength: f.disclosures.length,
      })),
    ).toEqual(framing.lines);
    for (const f of frames) {
      const checked = checkFramedEvent(f);
      expect(checked.ok && checked.value.event).toEqual(
        (({ record, hash, disclosures }) =>
          disclosures ? { record, hash, disclosures } : { record, hash })(events[f.index]!),
      );
    }
  });

  it('judges links to a stream head as the chain cases say', () => {
    for (const c of vectors.chainCases) {
      expect(judgeLink(c.head ?? undefined, c.seq, c.prev), c.name).toBe(c.verdict);
    }
  });

  it('finds a gap and a fork inside one batch', () => {
    const items = vectors.stream.events.map((e, index) => {
      const r = JSON.parse(e.record) as { stream: string; seq: number; prev: string };
      return { index, stream: r.stream, seq: r.seq, prev: r.prev, hash: e.hash };
    });
    expect(checkBatchLinks(items)).toEqual([]);
    const gap = [items[0]!, items[1]!, { ...items[3]!, index: 2 }];
    expect(checkBatchLinks(gap)).toEqual([
      expect.objectContaining({ index: 2, path: '/record/seq' }),
    ]);
    const fork = [items[0]!, items[1]!, { ...items[2]!, prev: items[0]!.hash }];
    expect(checkBatchLinks(fork)).toEqual([
      expect.objectContaining({ index: 2, path: '/record/prev' }),
    ]);
  });
});
