import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId, randomSaltSource, sealEvent, type SealedEvent } from '@vigil/protocol';
import {
  CLI,
  NO_RATE_LIMITS,
  startVigil,
  tempDataDir,
  waitFor,
  type VigilProcess,
} from './helpers/vigil.js';

/**
 * Tenant isolation, end to end against a real `vigil start`: two tenants A and B with keys of
 * every scope. For every route of the API description (/docs/json), A's keys try to read,
 * write or learn something of B: B's ids in paths, B's names in filters, tenant-naming fields
 * in query strings and bodies. A must get nothing of B in any answer, an id of B must answer
 * exactly like an id that does not exist, and B's events, keys, policies, holds and status
 * must be exactly as before. A route added to the API without a case here fails this test.
 */

const run = promisify(execFile);
const salts = randomSaltSource();

interface Res {
  readonly status: number;
  readonly text: string;
  readonly body: unknown;
}

interface TenantKeys {
  readonly id: string;
  ingest: string;
  query: string;
  admin: string;
}

interface StoredEvent {
  id: string;
  action: string;
  position?: { partition: number };
  hash: string;
  stream: string;
  seq: number;
  flags: string[];
  actor: { id: string | null };
}

/** A search item (PROTOCOL.md §20): the event apart from the server's fields. */
interface Item {
  hash: string;
  event: Omit<StoredEvent, 'hash' | 'flags' | 'position'>;
  server: { flags: string[]; position: { partition: number } };
}

const A: TenantKeys = { id: 'tenant-a', ingest: '', query: '', admin: '' };
const B: TenantKeys = { id: 'tenant-b', ingest: '', query: '', admin: '' };
const B_NAME = 'Tenant B Corp';
const B_ACTOR = 'bob-of-b';
const SHARED_STREAM = 'shared/stream';

let vigil: VigilProcess;
const data = tempDataDir('isolation');

/** Everything that identifies B or B's data: none of it may reach any answer given to A. */
const bMarkers = new Set<string>([B.id, B_NAME, B_ACTOR, 'b-litigation', 'b-policy-change']);
const b = {
  victimKeyId: '',
  holdId: '',
  cursor: '',
  sharedHashes: [] as string[],
  eventId: '',
  partition: 0,
  checkpointId: '',
  erasureId: '',
  restrictionId: '',
  alertId: 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0',
  reviewId: '',
  /** The stream of B's unchained events (`key/<keyId>`): only B writes to it. */
  keyStream: '',
  webhookId: '',
};
/** Ids of the events A's keys got a 202 for. */
const aPosted = new Set<string>();

async function call(
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
): Promise<Res> {
  const res = await fetch(`${vigil.url}${path}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  // NDJSON and CSV answers (POST /v1/verify, exports) are read from `text`.
  const json =
    text !== '' &&
    res.headers.get('content-type')?.includes('json') === true &&
    !res.headers.get('content-type')?.includes('ndjson');
  return { status: res.status, text, body: json ? (JSON.parse(text) as unknown) : undefined };
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args, '--url', vigil.url], {
    env: { PATH: process.env['PATH'] ?? '' },
  });
  return stdout;
}

async function allEvents(key: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let cursor: string | undefined;
  do {
    const res = await call('GET', `/v1/events?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, key);
    expect(res.status).toBe(200);
    const page = res.body as { events: Item[]; nextCursor?: string };
    out.push(
      ...page.events.map((i) => ({
        ...i.event,
        hash: i.hash,
        flags: i.server.flags,
        position: i.server.position,
      })),
    );
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** Events a client posted: not Vigil's own (system streams, openings of per-key streams). */
function clientEvents(events: readonly StoredEvent[]): StoredEvent[] {
  return events.filter(
    (e) => !e.stream.startsWith('vigil/') && !(e.stream.startsWith('key/') && e.seq === 0),
  );
}

/** Fails when `res` says anything of B beyond what the request itself sent. */
function expectNoLeak(res: Res, label: string, sent: readonly string[] = []): void {
  let text = res.text;
  for (const s of sent) text = text.replaceAll(s, '<sent>');
  for (const marker of bMarkers)
    expect(
      text.includes(marker),
      `${label}: answer holds "${marker}" of tenant B: ${res.text.slice(0, 300)}`,
    ).toBe(false);
}

/** An id of B's and an absent id of the same shape must get the same answer. */
function expectSameAnswer(
  forB: Res,
  absent: Res,
  bId: string,
  absentId: string,
  label: string,
): void {
  expect(forB.status, `${label}: status for B's id vs an absent id`).toBe(absent.status);
  expect(forB.text.replaceAll(bId, '<id>'), `${label}: body for B's id vs an absent id`).toBe(
    absent.text.replaceAll(absentId, '<id>'),
  );
}

function unchained(actor: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: newEventId(),
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: actor },
    ...extra,
  };
}

function sealedOn(stream: string, from: number, prev: string, count: number): SealedEvent[] {
  const out: SealedEvent[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const e = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'invoice.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'service', id: 'billing' },
      },
      { stream, seq, prev },
      salts,
    ).event;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

/**
 * One case per route of the API. `request` sends it as `key`; `id` is the path id to use
 * (B's, or an absent one); `query` and `body` add tenant-naming members. `ids` gives B's id
 * and an absent id of the same shape for routes with an id in the path. `check` asserts what
 * the route must do for A beyond the checks every route gets.
 */
interface RouteCase {
  request(
    key: string,
    id: string,
    extra: { query?: string; body?: Record<string, unknown> },
  ): Promise<Res>;
  readonly ids?: () => { b: string; absent: string };
  readonly hasBody?: boolean;
  /**
   * Strings of B's that A's own requests put into A's own data (A names B's tenant in its
   * events, B's person in its hold): seeing them again in A's answers is no leak.
   */
  readonly echoes?: readonly string[];
  check?(): Promise<void>;
}

const q = (query: string | undefined, sep = '?'): string => (query ? `${sep}${query}` : '');
const TENANT_QUERY = `tenant=${B.id}&tenantId=${B.id}`;
const TENANT_BODY = { tenant: B.id, tenantId: B.id };

const ROUTES: Record<string, RouteCase> = {
  'POST /v1/events': {
    hasBody: true,
    async request(key, _id, { query, body }) {
      // Tenant-naming members at every level: the body, the event, the query string.
      const event = unchained('alice-of-a', { tenant: B.id, tenantId: B.id });
      const res = await call('POST', `/v1/events${q(query)}`, key, {
        events: [event],
        ...body,
      });
      if (res.status === 202) aPosted.add(event['id'] as string);
      return res;
    },
    async check() {
      // A writes on a stream named like B's, continuing B's chain: it lands in A's own chain.
      const events = sealedOn(SHARED_STREAM, 3, b.sharedHashes.at(-1)!, 2);
      const res = await call('POST', '/v1/events', A.ingest, { events });
      expect(res.status).toBe(202);
      for (const e of events) aPosted.add((JSON.parse(e.record) as { id: string }).id);
      expect((await call('POST', '/v1/events', A.query, { events: [unchained('x')] })).status).toBe(
        403,
      );
    },
  },
  'GET /v1/events': {
    echoes: [B.id, B_ACTOR],
    request: (key, _id, { query }) =>
      call('GET', `/v1/events?actor=${B_ACTOR}${q(query, '&')}`, key),
    async check() {
      for (const query of [
        `actor=${B_ACTOR}`,
        `stream=${SHARED_STREAM}`,
        `stream=key/${b.victimKeyId}`,
        `cursor=${b.cursor}`,
        'category=admin,system',
      ]) {
        const res = await call('GET', `/v1/events?${query}`, A.query);
        expectNoLeak(res, `GET /v1/events?${query}`, [
          b.cursor,
          b.victimKeyId,
          B.id,
          B_ACTOR,
          // A's own event at seq 3 names B's head as its prev: A sent it.
          b.sharedHashes.at(-1)!,
        ]);
        if (query.startsWith('actor='))
          expect((res.body as { events: unknown[] }).events).toEqual([]);
      }
      // Counts: A's non-system events are exactly the ones A posted.
      await waitFor(
        async () => clientEvents(await allEvents(A.query)),
        (events) => events.length >= aPosted.size,
        20_000,
        "A's events in the store",
      );
      const mine = clientEvents(await allEvents(A.query));
      expect(new Set(mine.map((e) => e.id))).toEqual(aPosted);
      const shared = mine.filter((e) => e.stream === SHARED_STREAM);
      expect(shared.map((e) => e.seq).sort()).toEqual([3, 4]);
      // A's chain on the shared name starts at seq 3 in A: a gap of A's own, nothing of B's.
      expect(shared.find((e) => e.seq === 3)?.flags).toContain('gap');
    },
  },
  'GET /v1/search/facets': {
    echoes: [B_ACTOR],
    request: (key, _id, { query }) =>
      call('GET', `/v1/search/facets?field=actor&actor=${B_ACTOR}${q(query, '&')}`, key),
    async check() {
      const res = await call('GET', '/v1/search/facets?field=stream&size=1000', A.query);
      expectNoLeak(res, 'facets of every stream', [B_ACTOR, B.id]);
      expect((res.body as { values: unknown[] }).values.length).toBeGreaterThan(0);
    },
  },
  'GET /v1/search/histogram': {
    echoes: [B_ACTOR],
    request: (key, _id, { query }) =>
      call('GET', `/v1/search/histogram?actor=${B_ACTOR}${q(query, '&')}`, key),
    async check() {
      const res = await call('GET', `/v1/search/histogram?actor=${B_ACTOR}`, A.query);
      expect(res.body).toMatchObject({ total: 0 });
    },
  },
  'GET /v1/search/export': {
    echoes: [B_ACTOR],
    request: (key, _id, { query }) =>
      call('GET', `/v1/search/export?actor=${B_ACTOR}${q(query, '&')}`, key),
    async check() {
      const res = await call('GET', '/v1/search/export?format=ndjson', A.query);
      // A's own searches are in it (meta-audit), with the filters A sent: B's names and ids
      // that A typed in them (GET /v1/events above), and B's head A chained onto.
      const typed = [B_ACTOR, B.id, b.victimKeyId, b.cursor, b.sharedHashes.at(-1)!];
      expectNoLeak(res, 'export of everything', typed);
      // A link signed for A cannot be turned into one for B.
      const link = await call('POST', '/v1/search/export/link', A.query, {});
      const url = (link.body as { url: string }).url.replace(`tenant=${A.id}`, `tenant=${B.id}`);
      const forged = await call('GET', url, undefined);
      expect(forged.status).toBe(403);
      expectNoLeak(forged, 'a forged link');
    },
  },
  'POST /v1/search/export/link': {
    hasBody: true,
    echoes: [B_ACTOR],
    async request(key, _id, { query, body }) {
      const made = await call('POST', `/v1/search/export/link${q(query)}`, key, {
        actor: B_ACTOR,
        ...body,
      });
      if (made.status !== 200) return made;
      // Followed, the link serves A's events only.
      return call('GET', (made.body as { url: string }).url, undefined);
    },
  },
  'GET /v1/admin/tenant': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/tenant${q(query)}`, key),
    async check() {
      const res = await call('GET', '/v1/admin/tenant', A.admin);
      expect(res.body).toMatchObject({ tenant: { id: A.id } });
    },
  },
  'GET /v1/admin/keys': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/keys${q(query)}`, key),
    async check() {
      const res = await call('GET', '/v1/admin/keys', A.admin);
      const keys = (res.body as { keys: { tenantId: string }[] }).keys;
      expect(keys.length).toBeGreaterThanOrEqual(3);
      expect(keys.every((k) => k.tenantId === A.id)).toBe(true);
    },
  },
  'POST /v1/admin/keys': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/keys${q(query)}`, key, {
        scopes: ['query'],
        name: 'a-made',
        ...body,
      }),
    async check() {
      const res = await call('POST', '/v1/admin/keys', A.admin, { scopes: ['query'] });
      expect(res.status).toBe(201);
      const made = res.body as { key: { tenantId: string }; secret: string };
      expect(made.key.tenantId).toBe(A.id);
      // The new key reads A, and nothing of B.
      const found = await call('GET', `/v1/events?actor=${B_ACTOR}`, made.secret);
      expect((found.body as { events: unknown[] }).events).toEqual([]);
    },
  },
  'POST /v1/admin/keys/{keyId}/revoke': {
    hasBody: true,
    ids: () => ({ b: b.victimKeyId, absent: '0123456789ab' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/admin/keys/${id}/revoke${q(query)}`, key, { ...body }),
  },
  'POST /v1/admin/keys/{keyId}/rotate': {
    hasBody: true,
    ids: () => ({ b: b.victimKeyId, absent: '0123456789ab' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/admin/keys/${id}/rotate${q(query)}`, key, { graceSeconds: 0, ...body }),
  },
  'GET /v1/operator/tenants': {
    request: (key, _id, { query }) => call('GET', `/v1/operator/tenants${q(query)}`, key),
  },
  'GET /v1/operator/key-directory': {
    request: (key, _id, { query }) => call('GET', `/v1/operator/key-directory${q(query)}`, key),
  },
  'POST /v1/operator/tenants': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/operator/tenants${q(query)}`, key, { id: 'tenant-c', ...body }),
  },
  'POST /v1/operator/tenants/{id}/suspend': {
    hasBody: true,
    ids: () => ({ b: B.id, absent: 'tenant-zz' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/operator/tenants/${id}/suspend${q(query)}`, key, { ...body }),
  },
  'POST /v1/operator/tenants/{id}/resume': {
    hasBody: true,
    ids: () => ({ b: B.id, absent: 'tenant-zz' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/operator/tenants/${id}/resume${q(query)}`, key, { ...body }),
  },
  'GET /v1/operator/tenants/{id}/keys': {
    ids: () => ({ b: B.id, absent: 'tenant-zz' }),
    request: (key, id, { query }) => call('GET', `/v1/operator/tenants/${id}/keys${q(query)}`, key),
  },
  'POST /v1/operator/tenants/{id}/keys': {
    hasBody: true,
    ids: () => ({ b: B.id, absent: 'tenant-zz' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/operator/tenants/${id}/keys${q(query)}`, key, {
        scopes: ['query'],
        ...body,
      }),
  },
  'POST /v1/operator/keys/{keyId}/revoke': {
    hasBody: true,
    ids: () => ({ b: b.victimKeyId, absent: '0123456789ab' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/operator/keys/${id}/revoke${q(query)}`, key, { ...body }),
  },
  'GET /v1/admin/retention': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/retention${q(query)}`, key),
    async check() {
      const res = await call('GET', '/v1/admin/retention', A.admin);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tenant: A.id });
    },
  },
  'PUT /v1/admin/retention': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('PUT', `/v1/admin/retention${q(query)}`, key, { days: { api: 30 }, ...body }),
    async check() {
      const res = await call('PUT', '/v1/admin/retention', A.admin, { days: { api: 31 } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tenant: A.id });
    },
  },
  'GET /v1/admin/retention/history': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/retention/history${q(query)}`, key),
  },
  'POST /v1/admin/retention/apply': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/retention/apply${q(query)}`, key, { categories: ['api'], ...body }),
  },
  'GET /v1/admin/holds': {
    echoes: [B_ACTOR],
    request: (key, _id, { query }) => call('GET', `/v1/admin/holds?all=true${q(query, '&')}`, key),
  },
  'POST /v1/admin/holds': {
    hasBody: true,
    echoes: [B_ACTOR],
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/holds${q(query)}`, key, {
        subject: B_ACTOR,
        reason: 'a-hold',
        ...body,
      }),
    async check() {
      // A names B's person: the hold is A's, and covers none of B's events.
      const res = await call('POST', '/v1/admin/holds', A.admin, {
        subject: B_ACTOR,
        reason: 'a-hold',
      });
      expect(res.status).toBe(201);
      // At most A's own audit event of this hold (it names the subject, and whether the sink has
      // stored it before the hold's mutation runs is a race); never anything of B.
      expect(res.body).toMatchObject({ tenant: A.id });
      expect((res.body as { heldEvents: number }).heldEvents).toBeLessThanOrEqual(1);
    },
  },
  'GET /v1/keys/checkpoint': {
    // Vigil's own signing keys: public, the same for every tenant.
    request: (key, _id, { query }) => call('GET', `/v1/keys/checkpoint${q(query)}`, key),
  },
  'POST /v1/verify': {
    hasBody: true,
    // A's verification, aimed at a stream only B writes to, finds nothing there.
    async request(key, _id, { query, body }) {
      const pinned = (await call('GET', '/v1/keys/checkpoint', undefined)).body as {
        keys: { publicKey: string }[];
      };
      return call('POST', `/v1/verify${q(query)}`, key, {
        keys: pinned.keys.map((k) => k.publicKey),
        ...body,
      });
    },
    async check() {
      const pinned = (await call('GET', '/v1/keys/checkpoint', undefined)).body as {
        keys: { publicKey: string }[];
      };
      const res = await call('POST', '/v1/verify', A.admin, {
        keys: pinned.keys.map((k) => k.publicKey),
        stream: b.keyStream,
      });
      expect(res.status).toBe(200);
      const last = JSON.parse(res.text.trim().split('\n').at(-1)!) as {
        report: { tenant: string; totals: { events: number } };
      };
      expect(last.report.tenant).toBe(A.id);
      expect(last.report.totals.events).toBe(0);
    },
  },
  'GET /v1/checkpoints': {
    request: (key, _id, { query }) => call('GET', `/v1/checkpoints${q(query)}`, key),
    async check() {
      const res = await call('GET', '/v1/checkpoints', A.query);
      expect(res.status).toBe(200);
      for (const c of (res.body as { checkpoints: { checkpoint: string }[] }).checkpoints)
        expect(JSON.parse(c.checkpoint)).toMatchObject({ tenant: A.id });
    },
  },
  'GET /v1/checkpoints/latest': {
    request: (key, _id, { query }) => call('GET', `/v1/checkpoints/latest${q(query)}`, key),
  },
  'GET /v1/checkpoints/{id}': {
    ids: () => ({ b: b.checkpointId, absent: 'f'.repeat(64) }),
    request: (key, id, { query }) => call('GET', `/v1/checkpoints/${id}${q(query)}`, key),
  },
  'GET /v1/proofs/inclusion': {
    ids: () => ({ b: b.eventId, absent: newEventId() }),
    request: (key, id, { query }) =>
      call('GET', `/v1/proofs/inclusion?event=${id}${q(query, '&')}`, key),
  },
  'GET /v1/proofs/consistency': {
    request: (key, _id, { query }) =>
      call(
        'GET',
        `/v1/proofs/consistency?partition=${b.partition}&from=1&to=2${q(query, '&')}`,
        key,
      ),
  },
  'POST /v1/admin/subjects/export': {
    hasBody: true,
    echoes: [B_ACTOR],
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/subjects/export${q(query)}`, key, { subject: B_ACTOR, ...body }),
    async check() {
      // A names B's person: the export is of A's tenant only.
      const res = await call('POST', '/v1/admin/subjects/export', A.admin, { subject: B_ACTOR });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tenant: A.id });
    },
  },
  'POST /v1/admin/subjects/digest': {
    hasBody: true,
    echoes: [B_ACTOR],
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/subjects/digest${q(query)}`, key, { subject: B_ACTOR, ...body }),
  },
  'POST /v1/admin/subjects/erase': {
    hasBody: true,
    echoes: [B_ACTOR],
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/subjects/erase${q(query)}`, key, {
        subject: B_ACTOR,
        reason: 'a-erasure',
        ...body,
      }),
  },
  'GET /v1/access/review': {
    request: (key, _id, { query }) =>
      call('GET', `/v1/access/review?asOf=2099-01-01&format=json${q(query, '&')}`, key),
    async check() {
      // B has a grant of its own (its review shows it, see beforeAll); A's shows none of it.
      const res = await call('GET', '/v1/access/review?asOf=2099-01-01&format=json', A.query);
      expect(res.status).toBe(200);
      expect((res.body as { rows: unknown[] }).rows).toEqual([]);
      expect((await call('GET', '/v1/access/review?asOf=2099-01-01', A.admin)).status).toBe(403);
    },
  },
  'GET /v1/access/columns': {
    request: (key, _id, { query }) => call('GET', `/v1/access/columns${q(query)}`, key),
  },
  'POST /v1/reviews': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/reviews${q(query)}`, key, { asOf: '2099-01-01', ...body }),
  },
  'GET /v1/reviews': {
    request: (key, _id, { query }) => call('GET', `/v1/reviews${q(query)}`, key),
  },
  'GET /v1/reviews/{id}': {
    ids: () => ({ b: b.reviewId, absent: 'rev_0123456789abcdef' }),
    request: (key, id, { query }) => call('GET', `/v1/reviews/${id}${q(query)}`, key),
  },
  'GET /v1/reviews/{id}/worksheet': {
    ids: () => ({ b: b.reviewId, absent: 'rev_0123456789abcdef' }),
    request: (key, id, { query }) => call('GET', `/v1/reviews/${id}/worksheet${q(query)}`, key),
  },
  'POST /v1/reviews/{id}/decisions': {
    hasBody: true,
    ids: () => ({ b: b.reviewId, absent: 'rev_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/reviews/${id}/decisions${q(query)}`, key, {
        decisions: [{ item: 'x', decision: 'approve', reviewer: 'a' }],
        ...body,
      }),
  },
  'POST /v1/reviews/{id}/close': {
    hasBody: true,
    ids: () => ({ b: b.reviewId, absent: 'rev_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/reviews/${id}/close${q(query)}`, key, { ...body }),
  },
  'GET /v1/admin/erasures': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/erasures${q(query)}`, key),
  },
  'GET /v1/admin/erasures/{id}': {
    ids: () => ({ b: b.erasureId, absent: 'era_0123456789abcdef' }),
    request: (key, id, { query }) => call('GET', `/v1/admin/erasures/${id}${q(query)}`, key),
  },
  'POST /v1/admin/subjects/restrict': {
    hasBody: true,
    echoes: [B_ACTOR],
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/subjects/restrict${q(query)}`, key, {
        subject: B_ACTOR,
        reason: 'a-restriction',
        ...body,
      }),
  },
  'GET /v1/admin/restrictions': {
    request: (key, _id, { query }) =>
      call('GET', `/v1/admin/restrictions?all=true${q(query, '&')}`, key),
  },
  'POST /v1/admin/restrictions/{id}/lift': {
    hasBody: true,
    ids: () => ({ b: b.restrictionId, absent: 'rst_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/admin/restrictions/${id}/lift${q(query)}`, key, {
        reason: 'a-lift',
        ...body,
      }),
  },
  'POST /v1/admin/events/{id}/corrections': {
    hasBody: true,
    ids: () => ({ b: b.eventId, absent: newEventId() }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/admin/events/${id}/corrections${q(query)}`, key, {
        fields: { '/outcome': 'failure' },
        reason: 'a-correction',
        ...body,
      }),
  },
  'GET /v1/admin/privacy': {
    request: (key, _id, { query }) => call('GET', `/v1/admin/privacy${q(query)}`, key),
  },
  'PUT /v1/admin/privacy': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('PUT', `/v1/admin/privacy${q(query)}`, key, { pseudonymise: ['email'], ...body }),
  },
  'POST /v1/admin/privacy/destroy-key': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/admin/privacy/destroy-key${q(query)}`, key, {
        reason: 'a-destroy',
        ...body,
      }),
  },
  // Alerts: no detector runs here yet, so B has none and B's id below is one B's detector would
  // give; packages/app/src/server/alerts-api.integration.test.ts checks every alert route of A
  // against B's stored alerts.
  'GET /v1/alerts': {
    request: (key, _id, { query }) => call('GET', `/v1/alerts${q(query)}`, key),
  },
  'GET /v1/alerts/{id}': {
    ids: () => ({ b: b.alertId, absent: '0123456789abcdef0123456789abcdef' }),
    request: (key, id, { query }) => call('GET', `/v1/alerts/${id}${q(query)}`, key),
  },
  'PATCH /v1/alerts/{id}': {
    hasBody: true,
    ids: () => ({ b: b.alertId, absent: '0123456789abcdef0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('PATCH', `/v1/alerts/${id}${q(query)}`, key, { state: 'closed', ...body }),
  },
  'POST /v1/alerts/{id}/notes': {
    hasBody: true,
    ids: () => ({ b: b.alertId, absent: '0123456789abcdef0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/alerts/${id}/notes${q(query)}`, key, { text: 'a-note', ...body }),
  },
  'POST /v1/alerts/bulk': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/alerts/bulk${q(query)}`, key, {
        ids: [b.alertId],
        change: { state: 'closed' },
        ...body,
      }),
  },
  // A backtest over the day around B's events: A's key runs it over A's events only.
  'POST /v1/detect/backtest': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/detect/backtest${q(query)}`, key, {
        from: new Date(Date.now() - 86_400_000).toISOString(),
        to: new Date(Date.now() + 86_400_000).toISOString(),
        format: 'ndjson',
        ...body,
      }),
  },
  'POST /v1/admin/holds/{id}/release': {
    hasBody: true,
    ids: () => ({ b: b.holdId, absent: 'hold_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/admin/holds/${id}/release${q(query)}`, key, { ...body }),
  },
  'GET /v1/webhooks': {
    request: (key, _id, { query }) => call('GET', `/v1/webhooks${q(query)}`, key),
  },
  'POST /v1/webhooks': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/webhooks${q(query)}`, key, {
        url: 'http://127.0.0.1:9/a-webhook',
        ...body,
      }),
  },
  'PATCH /v1/webhooks/{id}': {
    hasBody: true,
    ids: () => ({ b: b.webhookId, absent: 'wh_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('PATCH', `/v1/webhooks/${id}${q(query)}`, key, { enabled: false, ...body }),
  },
  'DELETE /v1/webhooks/{id}': {
    ids: () => ({ b: b.webhookId, absent: 'wh_0123456789abcdef' }),
    request: (key, id, { query }) => call('DELETE', `/v1/webhooks/${id}${q(query)}`, key),
  },
  'POST /v1/webhooks/{id}/test': {
    hasBody: true,
    ids: () => ({ b: b.webhookId, absent: 'wh_0123456789abcdef' }),
    request: (key, id, { query, body }) =>
      call('POST', `/v1/webhooks/${id}/test${q(query)}`, key, { ...body }),
  },
  'GET /v1/webhooks/dead-letters': {
    request: (key, _id, { query }) => call('GET', `/v1/webhooks/dead-letters${q(query)}`, key),
  },
  'POST /v1/webhooks/dead-letters/redrive': {
    hasBody: true,
    request: (key, _id, { query, body }) =>
      call('POST', `/v1/webhooks/dead-letters/redrive${q(query)}`, key, { all: true, ...body }),
  },
};

/** Routes every process has that no tenant data can reach. */
const NOT_TENANT_ROUTES = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics']);

/** What B has: compared before and after A's attempts. */
/**
 * Events of a tenant but the meta-audit of its own searches and exports (`search.*`, recorded
 * in its own Vigil stream each time B's key looks: B's reads, not A's doing).
 */
function notOwnSearches(events: readonly StoredEvent[]): StoredEvent[] {
  return events.filter((e) => !(e.stream.startsWith('vigil/') && e.action.startsWith('search.')));
}

async function snapshotOfB(): Promise<Record<string, unknown>> {
  const events = notOwnSearches(await allEvents(B.query));
  return {
    events: events.map((e) => `${e.id}/${e.hash}/${e.flags.join(',')}`).sort(),
    tenant: (await call('GET', '/v1/admin/tenant', B.admin)).body,
    keys: (await call('GET', '/v1/admin/keys', B.admin)).body,
    retention: (await call('GET', '/v1/admin/retention', B.admin)).body,
    history: (await call('GET', '/v1/admin/retention/history', B.admin)).body,
    holds: (await call('GET', '/v1/admin/holds?all=true', B.admin)).body,
    erasures: (await call('GET', '/v1/admin/erasures', B.admin)).body,
    restrictions: (await call('GET', '/v1/admin/restrictions?all=true', B.admin)).body,
    reviews: (await call('GET', '/v1/reviews', B.admin)).body,
    privacy: (await call('GET', '/v1/admin/privacy', B.admin)).body,
    webhooks: (await call('GET', '/v1/webhooks', B.admin)).body,
    deadLetters: (await call('GET', '/v1/webhooks/dead-letters', B.admin)).body,
  };
}

describe('tenant isolation across every route', () => {
  let before: Record<string, unknown>;

  beforeAll(async () => {
    vigil = await startVigil({
      dataDir: data.dir,
      // Limits are per key and tested elsewhere; here they would only slow the sweep down.
      // A checkpoint as soon as events are stored, so that B has proofs to aim at.
      env: {
        VIGIL_CHECKPOINT_EVENTS: '1',
        VIGIL_CHECKPOINT_INTERVAL_SECONDS: '1',
        VIGIL_WEBHOOKS_ALLOW_ADDRESSES: '127.0.0.1/32',
      },
      args: NO_RATE_LIMITS,
    });
    const operator = vigil.credentials().operatorKey;
    // Tenants and keys through the CLI, the way an operator sets them up.
    await cli('tenants', 'create', A.id, '--name', 'Tenant A Corp', '--key', operator);
    await cli('tenants', 'create', B.id, '--name', B_NAME, '--key', operator);
    for (const t of [A, B]) {
      for (const scope of ['ingest', 'query', 'admin'] as const) {
        const out = await cli(
          'keys',
          'create',
          '--tenant',
          t.id,
          '--scopes',
          scope,
          '--json',
          '--key',
          operator,
        );
        const created = JSON.parse(out) as { key: { keyId: string }; secret: string };
        t[scope] = created.secret;
        if (t === B) bMarkers.add(created.key.keyId);
      }
    }
    const listed = JSON.parse(await cli('tenants', 'list', '--json', '--key', operator)) as {
      id: string;
    }[];
    expect(listed.map((t) => t.id)).toEqual(['default', A.id, B.id].sort());

    // B's data: events of a person, a chain on a stream, a key, a hold, a policy.
    expect(
      (
        await call('POST', '/v1/events', B.ingest, {
          // The first grants B_ACTOR a role: B's access review has a row.
          events: [0, 1, 2].map((i) =>
            unchained(
              B_ACTOR,
              i === 0
                ? {
                    access: {
                      change: 'grant',
                      subject: { type: 'user', id: B_ACTOR },
                      role: 'b-role',
                    },
                  }
                : {},
            ),
          ),
        })
      ).status,
    ).toBe(202);
    const chain = sealedOn(SHARED_STREAM, 0, '0'.repeat(64), 3);
    b.sharedHashes = chain.map((e) => e.hash);
    bMarkers.add('b-role');
    expect((await call('POST', '/v1/events', B.ingest, { events: chain })).status).toBe(202);
    const victim = JSON.parse(
      await cli(
        'keys',
        'create',
        '--scopes',
        'query',
        '--name',
        'b-victim',
        '--json',
        '--key',
        B.admin,
      ),
    ) as { key: { keyId: string } };
    b.victimKeyId = victim.key.keyId;
    bMarkers.add(b.victimKeyId);
    const hold = await call('POST', '/v1/admin/holds', B.admin, {
      subject: B_ACTOR,
      reason: 'b-litigation',
    });
    expect(hold.status).toBe(201);
    b.holdId = (hold.body as { hold: { id: string } }).hold.id;
    bMarkers.add(b.holdId);
    // B's webhook (on a port where nothing listens: the operator allows 127.0.0.1 here).
    const webhook = await call('POST', '/v1/webhooks', B.admin, {
      url: 'http://127.0.0.1:9/b-webhook-path',
      description: 'b-webhook',
    });
    expect(webhook.status).toBe(201);
    b.webhookId = (webhook.body as { webhook: { id: string } }).webhook.id;
    bMarkers.add(b.webhookId);
    bMarkers.add('b-webhook-path');
    bMarkers.add((webhook.body as { secret: string }).secret);
    // B's data-subject requests: an erasure, a restriction, a pseudonymisation setting.
    const erased = await call('POST', '/v1/admin/subjects/erase', B.admin, {
      subject: 'dave-of-b',
      reason: 'b-erasure',
    });
    expect(erased.status).toBe(200);
    b.erasureId = (erased.body as { erasure: string }).erasure;
    bMarkers.add(b.erasureId);
    bMarkers.add('b-erasure');
    const restricted = await call('POST', '/v1/admin/subjects/restrict', B.admin, {
      subject: 'carol-of-b',
      reason: 'b-restriction',
    });
    expect(restricted.status).toBe(201);
    b.restrictionId = (restricted.body as { restriction: { id: string } }).restriction.id;
    bMarkers.add(b.restrictionId);
    bMarkers.add('b-restriction');
    expect(
      (
        await call('PUT', '/v1/admin/privacy', B.admin, {
          pseudonymise: ['ip'],
          reason: 'b-privacy',
        })
      ).status,
    ).toBe(200);
    bMarkers.add('b-privacy');
    expect(
      (
        await call('PUT', '/v1/admin/retention', B.admin, {
          days: { api: 45 },
          reason: 'b-policy-change',
        })
      ).status,
    ).toBe(200);

    const events = await waitFor(
      () => allEvents(B.query),
      (list) =>
        clientEvents(list).length === 6 &&
        ['subject.erased', 'subject.restricted', 'privacy.pseudonymisation_changed'].every((a) =>
          list.some((e) => e.action === a),
        ),
      20_000,
      "B's six events and its recorded requests",
    );
    for (const e of events) {
      bMarkers.add(e.id);
      bMarkers.add(e.hash);
    }
    const client = clientEvents(events);
    b.keyStream = client.find((e) => e.stream.startsWith('key/'))!.stream;
    b.eventId = client[0]!.id;
    b.partition = client[0]!.position?.partition ?? 0;
    // B's signed checkpoint (one per stored event here): its id and tree roots are B's too.
    const latest = await waitFor(
      () => call('GET', '/v1/checkpoints/latest', B.query),
      (res) => res.status === 200,
      20_000,
      "B's first checkpoint",
    );
    const checkpoint = latest.body as { id: string; checkpoint: string };
    b.checkpointId = checkpoint.id;
    bMarkers.add(checkpoint.id);
    for (const p of (JSON.parse(checkpoint.checkpoint) as { partitions: { root: string }[] })
      .partitions)
      bMarkers.add(p.root);
    // B's grant is in B's access review (recorded as B's audit event, before the snapshot),
    // through the CLI as an auditor would ask.
    await waitFor(
      async () =>
        (
          JSON.parse(
            await cli(
              'access',
              'review',
              '--as-of',
              '2099-01-01',
              '--format',
              'json',
              '--key',
              B.query,
            ),
          ) as { rows: { right: string }[] }
        ).rows.map((r) => r.right),
      (rights) => JSON.stringify(rights) === '["b-role"]',
      20_000,
      "B's grant in B's access review",
    );
    // B's access review campaign, open: A must neither see nor decide on nor close it.
    const review = JSON.parse(
      await cli('review', 'start', '--as-of', '2099-01-01', '--json', '--key', B.admin),
    ) as { campaign: { id: string }; items: number };
    expect(review.items).toBe(1);
    b.reviewId = review.campaign.id;
    bMarkers.add(b.reviewId);
    expect(await cli('review', 'status', b.reviewId, '--key', B.admin)).toContain(
      '0 of 1 rights decided, 1 undecided',
    );
    const page = await call('GET', '/v1/events?limit=1', B.query);
    b.cursor = (page.body as { nextCursor: string }).nextCursor;
    // B's own requests above are recorded as audit events of B; wait until the last of them is
    // stored, so that "before" is B's settled state (two snapshots a second apart agree).
    before = await snapshotOfB();
    for (let tries = 0; tries < 20; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const again = await snapshotOfB();
      if (JSON.stringify(again) === JSON.stringify(before)) break;
      before = again;
    }
  }, 120_000);

  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('has a case for every route of the API description, and none for a route it lacks', async () => {
    const docs = (await call('GET', '/docs/json', undefined)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(docs.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const tenantRoutes = routes.filter((r) => !NOT_TENANT_ROUTES.has(r)).sort();
    expect(
      tenantRoutes,
      'a route of /docs/json has no isolation case: add it to ROUTES in test/isolation.test.ts',
    ).toEqual(Object.keys(ROUTES).sort());
  });

  for (const [route, routeCase] of Object.entries(ROUTES)) {
    it(`${route}: A's keys get nothing of B`, async () => {
      // The route's own assertions first, on a tenant A that has not yet sent the sweep below.
      await routeCase.check?.();
      const { b: bId, absent } = routeCase.ids?.() ?? { b: '', absent: '' };
      const sent = [bId, ...(routeCase.echoes ?? [])].filter(Boolean);
      for (const [scope, key] of [
        ['ingest', A.ingest],
        ['query', A.query],
        ['admin', A.admin],
      ] as const) {
        const label = `${route} with A's ${scope} key`;
        const plain = await routeCase.request(key, bId, {});
        expectNoLeak(plain, label, sent);
        if (routeCase.ids) {
          const other = await routeCase.request(key, absent, {});
          expectSameAnswer(plain, other, bId, absent, label);
        }
        // A tenant named in the query string or the body is refused or ignored, never obeyed
        // (the final comparison of B's state shows nothing was done to B).
        const named = await routeCase.request(key, bId, { query: TENANT_QUERY });
        if (named.status !== 400) expectNoLeak(named, `${label} and ?tenant=`, [...sent, B.id]);
        if (routeCase.hasBody) {
          const inBody = await routeCase.request(key, bId, { body: TENANT_BODY });
          if (inBody.status !== 400)
            expectNoLeak(inBody, `${label} and tenant in the body`, [...sent, B.id]);
        }
      }
    });
  }

  it("leaves B's events, keys, status, policy and holds exactly as they were", async () => {
    // Let the sink store everything A wrote before looking at B.
    await waitFor(
      async () => new Set((await allEvents(A.query)).map((e) => e.id)),
      (ids) => [...aPosted].every((id) => ids.has(id)),
      20_000,
      "A's writes stored",
    );
    const after = await snapshotOfB();
    const known = new Set(before['events'] as string[]);
    const added = notOwnSearches(await allEvents(B.query)).filter(
      (e) => !known.has(`${e.id}/${e.hash}/${e.flags.join(',')}`),
    );
    expect(
      added.map((e) => `${e.action} on ${e.stream}`),
      'events that appeared in B while A swept every route',
    ).toEqual([]);
    expect(after).toEqual(before);
    // B's key that A aimed at still works, unrotated.
    const victim = (await call('GET', '/v1/admin/keys', B.admin)).body as {
      keys: { keyId: string; status: string; expiresAt: string | null }[];
    };
    expect(victim.keys.find((k) => k.keyId === b.victimKeyId)).toMatchObject({
      status: 'active',
      expiresAt: null,
    });
    // B's chain on the shared stream name is B's alone: three events, no flags.
    const shared = (await allEvents(B.query)).filter((e) => e.stream === SHARED_STREAM);
    expect(shared.map((e) => e.hash).sort()).toEqual([...b.sharedHashes].sort());
    expect(shared.every((e) => e.flags.length === 0)).toBe(true);
  });
});
