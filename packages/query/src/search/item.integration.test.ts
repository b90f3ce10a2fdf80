import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  commitmentOf,
  parsePointer,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type Disclosures,
  type EventInput,
  type JsonValue,
  type SealedEvent,
} from '@vigil/protocol';
import { TenantDirectory } from '../auth/keys.js';
import { KeyRegistry } from '../auth/registry.js';
import { QueryErrorCodes } from '../errors.js';
import { correctionEvent } from '../privacy/corrections.js';
import { Eraser } from '../privacy/erasure.js';
import { Restrictions } from '../privacy/restrictions.js';
import { PrivacyService } from '../privacy/service.js';
import type { RowPrivacy } from '../privacy/pseudonyms.js';
import { eventRow } from '../store/rows.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { registerQueryRoutes } from '../http/routes.js';
import type { RecordChange } from '../http/retention-routes.js';
import type { SearchItem } from './item.js';
import { checkItem } from './check-item.js';
import { checkFilters } from './search.js';

/**
 * The search item (PROTOCOL.md §20) through `GET /v1/events` on a real store: server fields
 * apart from the producer's members, erased told apart from withheld, record bytes and
 * disclosures that a client verifies with nothing but the protocol, and nothing shown of what
 * restriction or pseudonymisation hides.
 */

/** An item as a client holds it (and, to forge one, changes it). */
type Item = { -readonly [K in keyof SearchItem]: SearchItem[K] };

const salts = randomSaltSource();
const NEVER = Math.floor(Date.parse('2100-01-01T00:00:00.000Z') / 1000);

describe('search items through GET /v1/events', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let privacy: PrivacyService;
  const recordAccess = vi.fn<RecordChange>().mockResolvedValue(undefined);
  const secrets = { query: '', admin: '', pseudoQuery: '' };
  /** The events as sealed, by actor id: what the store was given. */
  const sealed = new Map<string, SealedEvent>();
  let now = 0;
  /** Events stored so far: each gets its own id, time and log offset. */
  let stored = 0;

  async function store(
    tenant: string,
    inputs: readonly EventInput[],
    options: {
      withhold?: readonly string[];
      privacy?: RowPrivacy;
      stream?: string;
      /** The id of every event stored (a second copy of an id, as a fork makes). */
      id?: string;
    } = {},
  ): Promise<SealedEvent[]> {
    let prev = ZERO_HASH;
    const stream = options.stream ?? `test/${stored}`;
    const out: SealedEvent[] = [];
    const rows = inputs.map((input, seq) => {
      const n = stored++;
      const { event, record } = sealEvent(
        {
          ...input,
          id: options.id ?? `0193a4b2-6c1e-7000-8000-${String(n).padStart(12, '0')}`,
          time: new Date(now - 60_000 + n).toISOString(),
        },
        { stream, seq, prev },
        salts,
      );
      prev = event.hash;
      out.push(event);
      sealed.set(String((input.actor as { id: string }).id), event);
      const disclosures: Disclosures = { ...event.disclosures };
      // A producer may withhold a disclosure (PROTOCOL.md §5.3): the record keeps its commitment.
      for (const path of options.withhold ?? []) delete disclosures[path];
      return eventRow(
        event,
        record,
        disclosures,
        {
          tenantId: tenant,
          receivedAt: now - 30_000 + n,
          keyId: 'k',
          source: 'sealed',
          submittedDigest: '',
          logPartition: 0,
          logOffset: n,
          logIndex: 0,
          expiresAt: NEVER,
          flags: [],
        },
        options.privacy,
      );
    });
    await ts.store.insert(ts.store.table('events'), rows);
    return out;
  }

  const person = (id: string, extra: Partial<EventInput> = {}): EventInput => ({
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id, email: `${id}@example.eu` },
    context: { ip: '198.51.100.7' },
    ...extra,
  });

  beforeAll(async () => {
    ts = await openTestStore();
    now = await ts.now();
    const directory = new TenantDirectory(ts.store);
    const registry = new KeyRegistry(directory);
    await directory.createTenant('acme');
    await directory.createTenant('pseudo');
    secrets.query = (await directory.createKey({ tenantId: 'acme', scopes: ['query'] })).secret;
    secrets.admin = (
      await directory.createKey({ tenantId: 'acme', scopes: ['query', 'admin'] })
    ).secret;
    secrets.pseudoQuery = (
      await directory.createKey({ tenantId: 'pseudo', scopes: ['query'] })
    ).secret;
    await registry.refresh();
    privacy = new PrivacyService(ts.store, randomBytes(32));

    await store('acme', [
      // Members a producer may send (§3.4) under the names the server uses for its own.
      person('alice', {
        hash: 'the producer’s own hash',
        flags: ['producer-flag'],
        receivedAt: 'producer time',
        position: 7,
        source: 'producer',
        geo: { city: 'Atlantis' },
        server: 'producer server',
        personal: ['/metadata/phone'],
        metadata: { hash: 'meta-hash', flags: ['meta-flag'], phone: '+33 1 23 45 67 89' },
      }),
      person('bob'),
      person('carol'),
      person('dave'),
    ]);
    // bobby's e-mail was never disclosed.
    await store('acme', [person('bobby')], { withhold: ['/actor/email'] });
    await new Restrictions(ts.store, privacy).place(
      'acme',
      { id: 'dave' },
      'accuracy contested',
      'k',
    );
    const eraser = new Eraser(ts.store, privacy);
    await eraser.apply(await eraser.plan('acme', { id: 'carol' }));

    await privacy.setFields('pseudo', ['email', 'ip'], 'k', 'pseudonymise');
    await store('pseudo', [person('erin')], {
      privacy: (await privacy.rowPrivacy('pseudo')) as RowPrivacy,
    });

    app = Fastify();
    registerQueryRoutes(app, { store: ts.store, registry, recordAccess });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
  });

  const search = async (query: string, secret = secrets.query) => {
    const response = await app.inject({
      url: `/v1/events${query}`,
      headers: { authorization: `Bearer ${secret}` },
    });
    return { response, items: response.json<{ events: Item[] }>().events ?? [] };
  };
  const actorOf = (item: Item) => (item.event['actor'] as { id: string | null }).id;

  it("keeps a producer's members named like server fields, and the server's apart", async () => {
    const { items } = await search('?actor=alice');
    expect(items).toHaveLength(1);
    const [item] = items as [Item];
    expect(item.event).toMatchObject({
      hash: 'the producer’s own hash',
      flags: ['producer-flag'],
      receivedAt: 'producer time',
      position: 7,
      source: 'producer',
      geo: { city: 'Atlantis' },
      server: 'producer server',
      metadata: { hash: 'meta-hash', flags: ['meta-flag'], phone: '+33 1 23 45 67 89' },
    });
    expect(item.hash).toBe(sealed.get('alice')?.hash);
    expect(item.server).toMatchObject({
      flags: [],
      source: 'sealed',
      position: { partition: 0, offset: 0 },
      receivedAt: new Date(now - 30_000).toISOString(),
    });
    expect(Object.keys(item).sort()).toEqual(['event', 'hash', 'personal', 'server']);
  });

  it('tells an erased field from one never disclosed and from one in the clear', async () => {
    const { items } = await search('?order=asc&include=disclosures');
    const byActor = new Map(items.map((i) => [String(i.event['id']) + actorOf(i), i]));
    const alice = items.find((i) => actorOf(i) === 'alice') as Item;
    expect(alice.personal).toEqual({
      '/actor/email': 'disclosed',
      '/actor/id': 'disclosed',
      '/context/ip': 'disclosed',
      '/metadata/phone': 'disclosed',
    });
    // carol's id was erased: read null, and marked so.
    const carol = items.find((i) => i.hash === sealed.get('carol')?.hash) as Item;
    expect(carol.personal['/actor/id']).toBe('erased');
    expect(carol.event['actor']).toMatchObject({ id: null });
    expect(carol.disclosures?.['/actor/id']).toBeUndefined();
    // bobby's e-mail was withheld: null too, and not marked erased.
    const bobby = items.find((i) => actorOf(i) === 'bobby') as Item;
    expect(bobby.personal['/actor/email']).toBe('withheld');
    expect(bobby.event['actor']).toMatchObject({ email: null, id: 'bobby' });
    // A field in the clear is not listed.
    expect(alice.personal['/action']).toBeUndefined();
    expect(byActor.size).toBe(items.length);
  });

  it('include=record,disclosures: the hash is the SHA-256 of the bytes, each disclosure opens its commitment', async () => {
    const { response, items } = await search('?include=record,disclosures');
    expect(response.statusCode).toBe(200);
    expect(items.length).toBe(4);
    let checked = 0;
    for (const item of items) {
      const bytes = Buffer.from(item.record as string, 'utf8');
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(item.hash);
      const record = JSON.parse(item.record as string) as Record<string, unknown>;
      const disclosed = Object.entries(item.personal)
        .filter(([, s]) => s === 'disclosed')
        .map(([p]) => p);
      expect(Object.keys(item.disclosures ?? {}).sort()).toEqual(disclosed.sort());
      for (const [path, d] of Object.entries(item.disclosures ?? {})) {
        const commitment = (parsePointer(path) ?? []).reduce<unknown>(
          (node, token) => (node as Record<string, unknown>)[token],
          record,
        );
        expect(commitmentOf(path, d.value, Buffer.from(d.salt, 'base64url'))).toBe(commitment);
        // ... and the value it opens is what the item shows.
        const shown = (parsePointer(path) ?? []).reduce<unknown>(
          (node, token) => (node as Record<string, unknown>)[token],
          item.event,
        );
        expect(shown).toEqual(d.value);
        checked++;
      }
    }
    // alice 4, bob 3, bobby 2 (one withheld), carol none (erased).
    expect(checked).toBe(9);
    // The client-side check (PROTOCOL.md §20.4) accepts each item, and names what was altered.
    for (const item of items) expect(checkItem(item)).toEqual([]);
    const alice = items.find((i) => actorOf(i) === 'alice') as Item;
    const forged = structuredClone(alice) as Item & { disclosures: Disclosures };
    forged.record = (forged.record as string).replace('"document.viewed"', '"document.edited"');
    (forged.disclosures['/actor/email'] as { value: JsonValue }).value = 'mallory@example.eu';
    (forged.event['actor'] as Record<string, unknown>)['email'] = 'mallory@example.eu';
    expect(checkItem(forged)).toEqual([
      { path: '/hash', message: 'is not the SHA-256 of the record bytes' },
      {
        path: '/disclosures/~1actor~1email',
        message: 'does not open the commitment in the record',
      },
      // The forged record's action is no longer the one the event shows.
      { path: '/event', message: "is not the record's content in the clear" },
    ]);
    const shownWrong = structuredClone(alice);
    (shownWrong.event['actor'] as Record<string, unknown>)['id'] = 'bob';
    expect(checkItem(shownWrong)).toEqual([
      { path: '/event/actor/id', message: 'is not the disclosed value' },
    ]);
    const clearChanged = structuredClone(alice);
    clearChanged.event['outcome'] = 'failure';
    expect(checkItem(clearChanged)).toEqual([
      { path: '/event', message: "is not the record's content in the clear" },
    ]);
    // Without include, neither is sent.
    const plain = await search('');
    expect(plain.items.every((i) => i.record === undefined && i.disclosures === undefined)).toBe(
      true,
    );
  });

  it('shows nothing of a restricted subject, with or without include, but to a recorded admin search', async () => {
    const dave = sealed.get('dave') as SealedEvent;
    const daveSalts = Object.values(dave.disclosures ?? {}).map((d) => d.salt);
    for (const query of ['', '?include=record,disclosures', '?actor=dave&include=record']) {
      const { response } = await search(query);
      expect(response.statusCode).toBe(200);
      expect(response.body).not.toContain('dave');
      expect(response.body).not.toContain(dave.hash);
      for (const salt of daveSalts) expect(response.body).not.toContain(salt);
    }
    expect(recordAccess).not.toHaveBeenCalled();
    const { items } = await search(
      '?includeRestricted=true&actor=dave&include=disclosures',
      secrets.admin,
    );
    expect(recordAccess).toHaveBeenCalledTimes(1);
    expect(items).toHaveLength(1);
    expect(items[0]?.server.restrictedBy).toEqual([expect.stringMatching(/^rst_/)]);
    expect(items[0]?.disclosures?.['/actor/id']).toEqual(dave.disclosures?.['/actor/id']);
  });

  it('shows a pseudonymised field as its pseudonym, and never its disclosure', async () => {
    const erin = sealed.get('erin') as SealedEvent;
    const { response, items } = await search('?include=record,disclosures', secrets.pseudoQuery);
    expect(items).toHaveLength(1);
    const [item] = items as [Item];
    expect(item.personal).toEqual({
      '/actor/email': 'pseudonymised',
      '/actor/id': 'disclosed',
      '/context/ip': 'pseudonymised',
    });
    expect((item.event['actor'] as { email: string }).email).toMatch(/^ps_/);
    expect((item.event['context'] as { ip: string }).ip).toMatch(/^100::/);
    expect(Object.keys(item.disclosures ?? {})).toEqual(['/actor/id']);
    expect(response.body).not.toContain('erin@example.eu');
    expect(response.body).not.toContain('198.51.100.7');
    for (const path of ['/actor/email', '/context/ip'])
      expect(response.body).not.toContain(erin.disclosures?.[path]?.salt);
  });

  it('applies a correction to the copy it names, in event, listed in server.correctedBy', async () => {
    const [original] = await store(
      'acme',
      [person('frank', { correctedBy: 'the producer’s own' })],
      { stream: 'test/corrected' },
    );
    const id = (JSON.parse(original!.record) as { id: string }).id;
    // A second copy of the id (a fork) that the correction does not name.
    const [fork] = await store('acme', [person('frank', { outcome: 'failure' })], {
      stream: 'test/fork',
      id,
    });
    const correction = await correctionEvent(ts.store, 'acme', {
      event: id,
      hash: original!.hash,
      fields: { '/outcome': 'denied' },
      reason: 'wrong outcome',
    });
    const [recorded] = await store('acme', [correction], { stream: 'vigil/admin/test' });
    const recordedId = (JSON.parse(recorded!.record) as { id: string }).id;

    const { items } = await search('?actor=frank&include=record,disclosures');
    const byHash = new Map(items.map((i) => [i.hash, i]));
    const corrected = byHash.get(original!.hash) as Item;
    expect(corrected.event).toMatchObject({ outcome: 'denied', correctedBy: 'the producer’s own' });
    expect(corrected.server.correctedBy).toEqual([recordedId]);
    // The record and its disclosures stay the original's, and still verify.
    expect(JSON.parse(corrected.record as string)).toMatchObject({ outcome: 'success' });
    expect(checkItem(corrected)).toEqual([]);
    const other = byHash.get(fork!.hash) as Item;
    expect(other.event['outcome']).toBe('failure');
    expect(other.server.correctedBy).toBeUndefined();
    // As recorded: no correction applied, and the item checks in full.
    const original2 = (await search('?actor=frank&original=true&include=record,disclosures')).items;
    const asRecorded = original2.find((i) => i.hash === original!.hash) as Item;
    expect(asRecorded.event['outcome']).toBe('success');
    expect(checkItem(asRecorded)).toEqual([]);
  });

  it('refuses an unknown include, naming it', async () => {
    const { response } = await search('?include=record,salts');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: QueryErrorCodes.INVALID_QUERY });
    expect(() => checkFilters({ include: ['record', 'salts'] })).toThrow(
      expect.objectContaining({
        details: [{ path: '/include', message: 'salts is not one of: record, disclosures' }],
      }) as Error,
    );
  });
});
