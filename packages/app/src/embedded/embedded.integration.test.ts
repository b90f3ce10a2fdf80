import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ZERO_HASH } from '@vigil/protocol';
import { searchEvents } from '@vigil/query';
import { createAuditClient } from '@vigil/sdk';
import { startEmbeddedCollector, type EmbeddedCollector } from './embedded.js';

describe('embedded collector (in-process, no HTTP)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-embedded-'));
  let embedded: EmbeddedCollector;
  let ingestKey = '';

  beforeAll(async () => {
    embedded = await startEmbeddedCollector({
      settings: { dataDir: dir },
      logger: pino({ level: 'silent' }),
    });
    const created = await embedded.role.directory!.createKey({
      tenantId: 'default',
      scopes: ['ingest'],
    });
    await embedded.role.registry.refresh();
    ingestKey = created.secret;
  });
  afterAll(async () => {
    await embedded?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes SDK events through the same checks, log and sink, in order on one chain', async () => {
    const audit = createAuditClient({
      service: 'in-process',
      transport: embedded.transport(ingestKey),
      batch: { maxDelayMs: 10 },
      logger: false,
    });
    for (let i = 0; i < 25; i++) {
      await audit.loginSucceeded({
        actor: { type: 'user', id: `u-${i}`, email: `u${i}@example.eu` },
        method: 'password',
      });
    }
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    await expect
      .poll(
        async () =>
          (
            await searchEvents(embedded.role.store!, 'default', {
              stream: audit.stream,
              limit: 100,
            })
          ).events.length,
        { timeout: 10_000 },
      )
      .toBe(26);
    const page = await searchEvents(embedded.role.store!, 'default', {
      stream: audit.stream,
      limit: 100,
    });
    const events = page.events.sort((a, b) => Number(a.event['seq']) - Number(b.event['seq']));
    events.forEach((e, i) => {
      expect(e.event['seq']).toBe(i);
      expect(e.event['prev']).toBe(i === 0 ? ZERO_HASH : events[i - 1]?.hash);
      expect(e.server.flags).toEqual([]);
    });
    expect(events[1]?.event).toMatchObject({
      action: 'user.login',
      actor: { id: 'u-0', email: 'u0@example.eu' },
    });
    await audit.close({ deadlineMs: 5000 });
  });

  it('refuses a key that is not an ingest key, as over HTTP', async () => {
    const result = await embedded.transport('vgl_000000000000_nope').send(
      {
        size: 0,
        events: [],
        body: Buffer.alloc(0),
        contentType: 'application/vnd.vigil.sealed.v2',
      },
      new AbortController().signal,
    );
    expect(result).toMatchObject({ kind: 'rejected', status: 401 });
  });
});
