import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { logFormatFor, roleLogger } from './logger.js';

/** A stdout stand-in that keeps what is written, a terminal or not. */
function capture(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join('') });
}

describe('log format', () => {
  it('auto is readable on a terminal and JSON otherwise; json and pretty are forced', () => {
    expect(logFormatFor('auto', true)).toBe('pretty');
    expect(logFormatFor('auto', false)).toBe('json');
    expect(logFormatFor('json', true)).toBe('json');
    expect(logFormatFor('pretty', false)).toBe('pretty');
  });

  it('writes one JSON object per line when stdout is not a terminal', () => {
    const out = capture(false);
    roleLogger({ logLevel: 'info', logFormat: 'auto' }, { role: 'start' }, out).info(
      { url: 'http://127.0.0.1:8080' },
      'vigil start listening',
    );
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 30,
      role: 'start',
      url: 'http://127.0.0.1:8080',
      msg: 'vigil start listening',
    });
  });

  it('writes readable, coloured lines on a terminal', () => {
    const out = capture(true);
    const logger = roleLogger({ logLevel: 'info', logFormat: 'auto' }, { role: 'start' }, out);
    logger.info({ url: 'http://127.0.0.1:8080' }, 'vigil start listening');
    logger.child({ component: 'sink' }).warn('sink owns partitions');
    const text = out.text();
    expect(text).toContain('\u001b['); // ANSI colours
    // eslint-disable-next-line no-control-regex
    const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
    expect(() => JSON.parse(plain) as unknown).toThrow();
    expect(plain).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[start\] vigil start listening \{"url":"http:\/\/127\.0\.0\.1:8080"\}\n/,
    );
    expect(plain).toMatch(/WARN: \[start\] sink: sink owns partitions\n/);
  });

  it('logFormat=json keeps JSON on a terminal; pretty without a terminal has no colours', () => {
    const terminal = capture(true);
    roleLogger({ logLevel: 'info', logFormat: 'json' }, {}, terminal).info('hello');
    expect(JSON.parse(terminal.text())).toMatchObject({ msg: 'hello' });
    const pipe = capture(false);
    roleLogger({ logLevel: 'info', logFormat: 'pretty' }, {}, pipe).warn('hello');
    expect(pipe.text()).toMatch(/WARN.*hello/);
    expect(pipe.text()).not.toContain('\u001b[');
  });
});
