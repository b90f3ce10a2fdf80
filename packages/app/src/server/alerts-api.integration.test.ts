import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Alert } from '@vigil/detect';
import { AlertStore, type SearchPage } from '@vigil/query';
import { storeNow } from '@vigil/query/testing';
import { startTestApp, type TestApp } from './test-app.testkit.js';

/**
 * `/v1/alerts` through the whole HTTP surface of `vigil start` (real chDB, the system recorder
 * on the log, the sink storing its events): scopes and tenant isolation of every endpoint,
 * triage recorded as audit events before it is made, bulk changes, accepted-risk expiry by the
 * store's clock, grouping and pages, errors that name the field, and the metrics.
 */

let t: TestApp;
let now: number;
const keys = { query: '', admin: '', ingest: '', triage: '', otherQuery: '', otherTriage: '' };

function alert(tenant: string, n: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id: `${tenant}-${String(n).padStart(2, '0')}`,
    key: `k|${tenant}|${n}`,
    ruleId: n % 2 === 0 ? 'auth.brute_force_account' : 'auth.password_spraying',
    title: 'an alert',
    severity: n % 2 === 0 ? 'high' : 'medium',
    attack: ['T1110'],
    tenant,
    entity: n % 2 === 0 ? { 'actor.id': `u-${n % 3}` } : { 'context.ip': `192.0.2.${n % 2}` },
    firstEventTime: now - 600_000 + n * 1000,
    lastEventTime: now - 600_000 + n * 1000 + 10,
    eventIds: [],
    eventCount: 12,
    evidence: { count: 12 },
    version: 1,
    ...overrides,
  };
}

interface AlertBody {
  id: string;
  triage: {
    state: string;
    setState: string;
    until: string | null;
    assignee: string | null;
    notes: { author: string; text: string }[];
  };
}

const body = <T>(r: { body: string }): T => JSON.parse(r.body) as T;

beforeAll(async () => {
  t = await startTestApp();
  now = await storeNow(t.store);
  keys.query = t.credentials.queryKey;
  keys.admin = t.credentials.adminKey;
  keys.ingest = t.credentials.ingestKey;
  keys.triage = (await t.directory.createKey({ tenantId: 'default', scopes: ['triage'] })).secret;
  await t.directory.createTenant('globex');
  keys.otherQuery = (await t.directory.createKey({ tenantId: 'globex', scopes: ['query'] })).secret;
  keys.otherTriage = (
    await t.directory.createKey({ tenantId: 'globex', scopes: ['triage', 'admin'] })
  ).secret;
  await t.registry.refresh();
  const store = new AlertStore(t.store);
  await store.record(
    Array.from({ length: 12 }, (_, i) => alert('default', i + 1)),
    now,
  );
  await store.record([alert('globex', 1), alert('globex', 2)], now);
});
afterAll(async () => t?.close());

describe('/v1/alerts', () => {
  it('reads with scope query; changes with scope triage or admin; nothing without a key', async () => {
    const id = 'default-01';
    const reads = [`/v1/alerts`, `/v1/alerts/${id}`];
    for (const url of reads) {
      expect((await t.call('GET', url, undefined)).statusCode).toBe(401);
      expect((await t.call('GET', url, keys.ingest)).statusCode).toBe(403);
      expect((await t.call('GET', url, keys.triage)).statusCode).toBe(403);
      expect((await t.call('GET', url, keys.query)).statusCode).toBe(200);
    }
    const changes: ['PATCH' | 'POST', string, unknown][] = [
      ['PATCH', `/v1/alerts/${id}`, { state: 'acknowledged' }],
      ['POST', `/v1/alerts/${id}/notes`, { text: 'seen' }],
      ['POST', '/v1/alerts/bulk', { ids: [id], change: { state: 'acknowledged' } }],
    ];
    for (const [method, url, payload] of changes) {
      expect((await t.call(method, url, undefined, payload)).statusCode).toBe(401);
      const refused = await t.call(method, url, keys.query, payload);
      expect(refused.statusCode).toBe(403);
      expect(body<{ error: { message: string } }>(refused).error.message).toMatch(
        /scope triage or admin/,
      );
      expect((await t.call(method, url, keys.ingest, payload)).statusCode).toBe(403);
      expect((await t.call(method, url, keys.triage, payload)).statusCode).toBeLessThan(300);
      expect((await t.call(method, url, keys.admin, payload)).statusCode).toBeLessThan(300);
    }
  });

  it("never shows or changes another tenant's alerts", async () => {
    const mine = body<{ alerts: { id: string }[] }>(
      await t.call('GET', '/v1/alerts', keys.otherQuery),
    );
    expect(mine.alerts.map((a) => a.id).sort()).toEqual(['globex-01', 'globex-02']);
    const theirs = 'default-02';
    expect((await t.call('GET', `/v1/alerts/${theirs}`, keys.otherQuery)).statusCode).toBe(404);
    const patch = await t.call('PATCH', `/v1/alerts/${theirs}`, keys.otherTriage, {
      state: 'closed',
    });
    expect(patch.statusCode).toBe(404);
    expect(body<{ error: { code: string } }>(patch).error.code).toBe('VIGIL_ERR_ALERT_NOT_FOUND');
    expect(
      (await t.call('POST', `/v1/alerts/${theirs}/notes`, keys.otherTriage, { text: 'x' }))
        .statusCode,
    ).toBe(404);
    const bulk = await t.call('POST', '/v1/alerts/bulk', keys.otherTriage, {
      ids: ['globex-01', theirs],
      change: { state: 'closed' },
    });
    expect(bulk.statusCode).toBe(404);
    expect(body<{ error: { details: { path: string }[] } }>(bulk).error.details[0]?.path).toBe(
      '/ids/1',
    );
    // Nothing was changed, neither theirs nor its own listed with it.
    const own = body<AlertBody>(await t.call('GET', '/v1/alerts/globex-01', keys.otherQuery));
    expect(own.triage.state).toBe('open');
    // A bulk change by rule changes only the key's tenant's alerts.
    const byRule = await t.call('POST', '/v1/alerts/bulk', keys.otherTriage, {
      rule: 'auth.brute_force_account',
      change: { state: 'false_positive' },
    });
    expect(body<{ changed: number }>(byRule).changed).toBe(1);
    const check = body<AlertBody>(await t.call('GET', `/v1/alerts/${theirs}`, keys.query));
    expect(check.triage.state).not.toBe('false_positive');
  });

  it('records every triage change as an audit event before making it, notes and assignee as personal values', async () => {
    const id = 'default-03';
    const patched = await t.call('PATCH', `/v1/alerts/${id}`, keys.triage, {
      state: 'acknowledged',
      assignee: 'ana@example.eu',
      reason: 'on it',
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const answer = body<{ changed: number; event: string; alert: AlertBody }>(patched);
    expect(answer.alert.triage).toMatchObject({
      state: 'acknowledged',
      assignee: 'ana@example.eu',
    });
    const noted = await t.call('POST', `/v1/alerts/${id}/notes`, keys.triage, {
      text: 'the VPN of the Lyon office',
    });
    expect(noted.statusCode).toBe(201);
    expect(body<{ alert: AlertBody }>(noted).alert.triage.notes.map((n) => n.text)).toEqual([
      'the VPN of the Lyon office',
    ]);

    // The events reach the store through the log and the sink.
    let events: SearchPage['events'] = [];
    for (let i = 0; i < 100 && events.length < 2; i++) {
      events = body<SearchPage>(
        await t.call('GET', '/v1/events?action=alert.triaged&order=asc', keys.query),
      ).events.filter((e) => (e.event['target'] as { id?: string } | undefined)?.id === id);
      if (events.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(events).toHaveLength(2);
    const [first, second] = events;
    expect(first?.event['id']).toBe(answer.event);
    expect(first?.event['metadata']).toMatchObject({
      alerts: [id],
      count: 1,
      state: 'acknowledged',
      assignee: 'ana@example.eu',
    });
    expect(first?.personal).toMatchObject({
      '/metadata/assignee': 'disclosed',
      '/metadata/reason': 'disclosed',
    });
    expect(second?.personal).toMatchObject({ '/metadata/note': 'disclosed' });

    // A change that cannot be recorded is not made.
    const spy = vi.spyOn(t.recorder, 'record').mockRejectedValueOnce(new Error('log down'));
    const refused = await t.call('PATCH', `/v1/alerts/${id}`, keys.triage, { state: 'closed' });
    spy.mockRestore();
    expect(refused.statusCode).toBeGreaterThanOrEqual(500);
    const after = body<AlertBody>(await t.call('GET', `/v1/alerts/${id}`, keys.query));
    expect(after.triage.state).toBe('acknowledged');
  });

  it('an accepted risk reads as open again after its expiry (store clock)', async () => {
    const id = 'default-05';
    const until = (await storeNow(t.store)) + 1500;
    const r = await t.call('PATCH', `/v1/alerts/${id}`, keys.triage, {
      state: 'accepted_risk',
      until: new Date(until).toISOString(),
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(body<{ alert: AlertBody }>(r).alert.triage.state).toBe('accepted_risk');
    const accepted = body<{ alerts: { id: string }[] }>(
      await t.call('GET', '/v1/alerts?state=accepted_risk', keys.query),
    );
    expect(accepted.alerts.map((a) => a.id)).toEqual([id]);
    while ((await storeNow(t.store)) <= until) await new Promise((res) => setTimeout(res, 200));
    const open = body<AlertBody>(await t.call('GET', `/v1/alerts/${id}`, keys.query));
    expect(open.triage).toMatchObject({
      state: 'open',
      setState: 'accepted_risk',
      until: new Date(until).toISOString(),
    });
  });

  it('refuses bad input with 400 naming the field', async () => {
    const cases: [string, string, unknown, string][] = [
      ['PATCH', '/v1/alerts/default-06', { state: 'accepted_risk' }, '/until'],
      ['PATCH', '/v1/alerts/default-06', { state: 'accepted_risk', until: 'tomorrow' }, '/until'],
      [
        'PATCH',
        '/v1/alerts/default-06',
        { state: 'accepted_risk', until: new Date(now - 1000).toISOString() },
        '/until',
      ],
      ['PATCH', '/v1/alerts/default-06', { state: 'resolved' }, '/state'],
      ['PATCH', '/v1/alerts/default-06', {}, '/state'],
      ['POST', '/v1/alerts/bulk', { change: { state: 'closed' } }, '/ids'],
      [
        'POST',
        '/v1/alerts/bulk',
        { ids: ['default-06'], rule: 'x', change: { state: 'closed' } },
        '/ids',
      ],
      ['GET', '/v1/alerts?state=done', undefined, '/state'],
      ['GET', '/v1/alerts?limit=0', undefined, '/limit'],
      ['GET', '/v1/alerts?from=yesterday', undefined, '/from'],
      ['GET', '/v1/alerts?cursor=bm9wZQ', undefined, '/cursor'],
    ];
    for (const [method, url, payload, path] of cases) {
      const r = await t.call(
        method as 'GET',
        url,
        method === 'GET' ? keys.query : keys.triage,
        payload,
      );
      expect(r.statusCode, `${method} ${url} ${JSON.stringify(payload)}: ${r.body}`).toBe(400);
      const error = body<{ error: { code: string; details?: { path: string }[] } }>(r).error;
      expect(error.code).toMatch(/^VIGIL_ERR_/);
      expect(JSON.stringify(error.details ?? []), `${method} ${url}`).toContain(path);
    }
    const unknown = await t.call('GET', '/v1/alerts?stat=open', keys.query);
    expect(unknown.statusCode).toBe(400);
  });

  it('bulk changes by ids and by rule; groups by rule, entity and address; cursor pages', async () => {
    const byIds = await t.call('POST', '/v1/alerts/bulk', keys.triage, {
      ids: ['default-07', 'default-09'],
      change: { state: 'closed', note: 'same incident' },
    });
    expect(body<{ changed: number }>(byIds).changed).toBe(2);
    const closed = body<{ alerts: AlertBody[] }>(
      await t.call('GET', '/v1/alerts?state=closed', keys.query),
    );
    expect(closed.alerts.map((a) => a.id)).toEqual(['default-09', 'default-07']);
    expect(closed.alerts[0]?.triage.notes.map((n) => n.text)).toEqual(['same incident']);

    const byRule = await t.call('POST', '/v1/alerts/bulk', keys.triage, {
      rule: 'auth.password_spraying',
      state: ['open'],
      change: { assignee: 'team-soc' },
    });
    expect(byRule.statusCode, byRule.body).toBe(200);
    const assigned = body<{ alerts: AlertBody[] }>(
      await t.call('GET', '/v1/alerts?assignee=team-soc&limit=500', keys.query),
    );
    expect(assigned.alerts.length).toBe(body<{ changed: number }>(byRule).changed);
    expect(assigned.alerts.every((a) => a.id.match(/-(01|03|05|11)$/))).toBe(true);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = body<{ alerts: { id: string }[]; nextCursor?: string }>(
        await t.call('GET', `/v1/alerts?limit=5${cursor ? `&cursor=${cursor}` : ''}`, keys.query),
      );
      seen.push(...page.alerts.map((a) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => alert('default', 12 - i).id));

    const rules = body<{ groups: { key: string; alerts: number }[] }>(
      await t.call('GET', '/v1/alerts?groupBy=rule', keys.query),
    );
    expect(rules.groups.map((g) => [g.key, g.alerts])).toEqual([
      ['auth.brute_force_account', 6],
      ['auth.password_spraying', 6],
    ]);
    const entities = body<{ groups: { key: string; alerts: number }[] }>(
      await t.call('GET', '/v1/alerts?groupBy=entity&severity=high', keys.query),
    );
    expect(entities.groups.map((g) => g.key).sort()).toEqual(['u-0', 'u-1', 'u-2']);
    const addresses = body<{ groups: { key: string; alerts: number }[] }>(
      await t.call('GET', '/v1/alerts?groupBy=address&rule=auth.password_spraying', keys.query),
    );
    expect(addresses.groups.map((g) => [g.key, g.alerts])).toEqual([['192.0.2.1', 6]]);
  });

  it('exports metrics: triage changes by state, open alerts by severity without a tenant label', async () => {
    const text = (await t.call('GET', '/metrics', undefined)).body;
    expect(text).toMatch(/vigil_alert_triage_changes_total\{state="closed"\} [1-9]/);
    expect(text).toMatch(/vigil_alerts_open\{severity="high"\} [1-9]/);
    expect(text).not.toMatch(/vigil_alerts_open\{[^}]*tenant/);
  });
});
