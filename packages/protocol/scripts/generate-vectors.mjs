// Writes vectors/v2.json from fixed inputs and fixed salts. Run after a build:
//   node packages/protocol/scripts/generate-vectors.mjs
// The vectors are the protocol's contract: once published they only change with the
// protocol version. The test suite recomputes every value in them.
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  sealEvent,
  commitmentOf,
  canonicalJson,
  ZERO_HASH,
  COMMITMENT_DOMAIN,
  judgeLink,
  derivedEventId,
  frameSealedEvents,
  parseFramedBody,
  SEALED_MEDIA_TYPE,
} from '../dist/index.js';

function fixedSalts(label) {
  let n = 0;
  return {
    salt: () => createHash('sha256').update(`${label}:${n++}`).digest().subarray(0, 16),
  };
}

const stream = `billing-api/host-7/${derivedEventId(Date.parse('2026-11-23T08:59:59.000Z'), 'vigil-vector:boot')}`;

const inputs = [
  {
    id: derivedEventId(Date.parse('2026-11-23T09:00:00.000Z'), 'vigil-vector:e0'),
    time: '2026-11-23T09:00:00.000Z',
    action: 'stream.opened',
    category: 'system',
    outcome: 'success',
    actor: { type: 'service', id: 'billing-api' },
    metadata: { sdk: '@vigil/sdk', sdkVersion: '0.1.0' },
  },
  {
    id: derivedEventId(Date.parse('2026-11-23T09:00:01.250Z'), 'vigil-vector:e1'),
    time: '2026-11-23T09:00:01.250Z',
    action: 'user.login',
    category: 'authentication',
    outcome: 'success',
    actor: { type: 'user', id: 'u-1042', name: 'Zoë Müller', email: 'zoe@example.eu' },
    context: {
      ip: '203.0.113.7',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
      requestId: 'req-77',
    },
    metadata: { method: 'password+totp', mfa: true },
  },
  {
    id: derivedEventId(Date.parse('2026-11-23T09:00:05.001Z'), 'vigil-vector:e2'),
    time: '2026-11-23T09:00:05.001Z',
    action: 'role.granted',
    category: 'access_change',
    outcome: 'success',
    actor: { type: 'user', id: 'u-1', email: 'admin@example.eu' },
    access: {
      change: 'grant',
      subject: { type: 'user', id: 'u-1042' },
      role: 'billing:manager',
      resource: { type: 'org', id: 'acme' },
      grantedBy: { type: 'user', id: 'u-1' },
      ticket: 'SEC-314',
      reason: 'quarterly close',
    },
    metadata: { phone: '+33 6 12 34 56 78', approvals: 2 },
    personal: ['/metadata/phone'],
  },
  {
    id: derivedEventId(Date.parse('2026-11-23T09:00:06.000Z'), 'vigil-vector:e3'),
    time: '2026-11-23T09:00:06.000Z',
    action: 'invoice.exported',
    category: 'data_access',
    outcome: 'denied',
    actor: { type: 'api_key', id: 'key_9f2' },
    target: { type: 'invoice', id: 'INV-2026-0042', name: 'Invoice 42' },
    metadata: { 'a/b~c': 'key with pointer characters', unicode: '€ 𝄞 \u0007', n: 1e21, f: 0.1 },
    x_future_field: { kept: ['exactly', 1] },
  },
];

const salts = fixedSalts('vigil-vector');
const events = [];
let prev = ZERO_HASH;
inputs.forEach((input, seq) => {
  const { event } = sealEvent(input, { stream, seq, prev }, salts);
  events.push({ input, link: { stream, seq, prev }, ...event });
  prev = event.hash;
});

// One commitment shown byte for byte.
const salt = createHash('sha256').update('vigil-vector:commitment').digest().subarray(0, 16);
const path = '/actor/email';
const value = 'zoe@example.eu';
const valueBytes = Buffer.from(canonicalJson(value), 'utf8');
const pathBytes = Buffer.from(path, 'utf8');
const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const preimage = Buffer.concat([
  COMMITMENT_DOMAIN,
  u32(salt.length),
  salt,
  u32(pathBytes.length),
  pathBytes,
  u32(valueBytes.length),
  valueBytes,
]);
const commitment = {
  path,
  value,
  salt: salt.toString('base64url'),
  preimageHex: preimage.toString('hex'),
  commitment: commitmentOf(path, value, salt),
};

const h = events.map((e) => e.hash);
const chainCases = [
  { name: 'first event of a new stream', head: null, seq: 0, prev: ZERO_HASH, verdict: 'next' },
  { name: 'new stream not starting at 0', head: null, seq: 3, prev: h[2], verdict: 'gap' },
  {
    name: 'new stream, seq 0 with a non-zero prev',
    head: null,
    seq: 0,
    prev: h[0],
    verdict: 'fork',
  },
  { name: 'next event', head: { seq: 1, hash: h[1] }, seq: 2, prev: h[1], verdict: 'next' },
  { name: 'gap: seq 2 missing', head: { seq: 1, hash: h[1] }, seq: 3, prev: h[2], verdict: 'gap' },
  {
    name: 'fork: seq 2 does not link to the head',
    head: { seq: 1, hash: h[1] },
    seq: 2,
    prev: h[0],
    verdict: 'fork',
  },
  {
    name: 'behind: replay or fork, decided by the stored hash',
    head: { seq: 3, hash: h[3] },
    seq: 1,
    prev: h[0],
    verdict: 'behind',
  },
];
for (const c of chainCases) {
  const got = judgeLink(c.head ?? undefined, c.seq, c.prev);
  if (got !== c.verdict) throw new Error(`chain case ${c.name}: ${got}`);
}

const canonical = [
  {
    input: { b: 1, a: [true, null, 'x'], '€': 0, '\u0080': -0 },
    output: canonicalJson({ b: 1, a: [true, null, 'x'], '€': 0, '\u0080': -0 }),
  },
  {
    input: { n: [1e21, 1e-7, 0.000001, 123456789012345680000, 4.5, -1.5e-300] },
    output: canonicalJson({ n: [1e21, 1e-7, 0.000001, 123456789012345680000, 4.5, -1.5e-300] }),
  },
  {
    input: { s: '\u2028\u2029"\\\n\t\u001f/' },
    output: canonicalJson({ s: '\u2028\u2029"\\\n\t\u001f/' }),
  },
];

// The four events as one request body of the sealed framing (PROTOCOL.md §9).
const framedText = frameSealedEvents(
  events.map(({ record, hash, disclosures }) => ({ record, hash, disclosures })),
);
const framedBytes = Buffer.from(framedText, 'utf8');
const split = parseFramedBody(framedBytes);
if (split.details.length > 0 || split.frames.length !== events.length)
  throw new Error('the framing vector does not split into its events');
const framing = {
  mediaType: SEALED_MEDIA_TYPE,
  text: framedText,
  hex: framedBytes.toString('hex'),
  sha256: createHash('sha256').update(framedBytes).digest('hex'),
  lines: split.frames.map((f, i) => ({
    index: i,
    recordStart: f.record.byteOffset - framedBytes.byteOffset,
    recordLength: f.record.length,
    hash: f.hash,
    disclosuresLength: f.disclosures.length,
  })),
};

const vectors = {
  protocol: 2,
  description:
    'Vigil protocol v2 test vectors. Salts are fixed here so the outputs can be reproduced; real producers draw salts at random. See PROTOCOL.md §11.',
  zeroHash: ZERO_HASH,
  commitment,
  canonical,
  stream: { id: stream, events },
  chainCases,
  framing,
};
writeFileSync(
  new URL('../vectors/v2.json', import.meta.url),
  JSON.stringify(vectors, null, 2) + '\n',
);
console.log('wrote vectors/v2.json:', events.length, 'events, head', prev);
