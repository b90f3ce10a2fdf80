import { describe, expect, it } from 'vitest';
import { detectionEvent } from './event-view.js';

describe('detectionEvent', () => {
  const view = {
    v: 2,
    id: '0190a0b0-0000-7000-8000-000000000001',
    stream: 'app/web',
    seq: 3,
    time: '2026-03-01T09:30:00.000Z',
    action: 'user.login',
    category: 'authentication',
    outcome: 'failure',
    actor: { type: 'user', id: 'u-1042', email: null },
    context: { ip: '203.0.113.9', userAgent: 'Mozilla/5.0', sessionId: null },
    access: { change: 'granted', subject: { type: 'user', id: 'u-7' }, role: 'admin' },
    metadata: { reason: 'bad_password' },
  };

  it('maps an opened record and its derived columns, absent values absent', () => {
    const event = detectionEvent({
      tenant: 'acme',
      view,
      derived: {
        geo_country: 'FR',
        geo_city: 'Paris',
        geo_latitude: 48.85,
        geo_longitude: 2.35,
        geo_asn: 3215,
        geo_as_org: '',
        ua_browser: 'Firefox',
        ua_os: '',
        ua_device: '',
      },
      flags: ['gap'],
    });
    expect(event).toEqual({
      tenant: 'acme',
      id: view.id,
      time: Date.parse(view.time),
      action: 'user.login',
      category: 'authentication',
      outcome: 'failure',
      actor: { type: 'user', id: 'u-1042' },
      context: { ip: '203.0.113.9', userAgent: 'Mozilla/5.0' },
      access: { change: 'granted', subject: { type: 'user', id: 'u-7' }, role: 'admin' },
      metadata: { reason: 'bad_password' },
      enrichment: {
        geo: { country: 'FR', city: 'Paris', lat: Math.fround(48.85), lon: Math.fround(2.35) },
        asn: { number: 3215 },
        ua: { family: 'Firefox' },
      },
      stream: 'app/web',
      seq: 3,
      flags: ['gap'],
    });
  });

  it('gives the same coordinates for the enrichment and for the stored Float32 read back', () => {
    const at = (lat: number, lon: number) =>
      detectionEvent({
        tenant: 'acme',
        view,
        derived: { geo_country: 'FR', geo_latitude: lat, geo_longitude: lon },
      })?.enrichment?.geo;
    // 48.8566 as the enrichment gives it, and as the store returns its Float32 (shortest form).
    const stored = (x: number) => Number(Math.fround(x).toPrecision(9));
    expect(at(48.8566, 2.3522)).toEqual(at(stored(48.8566), stored(2.3522)));
  });

  it('gives no event for a record without a valid time, and no geo without coordinates', () => {
    expect(detectionEvent({ tenant: 'acme', view: { ...view, time: 'soon' } })).toBeUndefined();
    const event = detectionEvent({
      tenant: 'acme',
      view,
      derived: { geo_country: 'FR', geo_latitude: null, geo_longitude: null, geo_asn: null },
    });
    expect(event?.enrichment).toBeUndefined();
  });
});
