import { describe, expect, it } from 'vitest';
import { UserAgentParser } from './user-agent.js';

const CHROME_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const SAFARI_IPAD =
  'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1';
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';

describe('UserAgentParser', () => {
  const parser = new UserAgentParser(2);

  it('gives browser, OS and device type', () => {
    expect(parser.parse(CHROME_WINDOWS)).toEqual({
      ua_browser: 'Chrome',
      ua_browser_version: '124.0.0.0',
      ua_os: 'Windows',
      ua_os_version: '10',
      ua_device: 'desktop',
    });
    expect(parser.parse(SAFARI_IPHONE)).toMatchObject({
      ua_browser: 'Mobile Safari',
      ua_os: 'iOS',
      ua_os_version: '17.4',
      ua_device: 'mobile',
    });
    expect(parser.parse(SAFARI_IPAD)).toMatchObject({ ua_os: 'iOS', ua_device: 'tablet' });
    expect(parser.parse(FIREFOX_LINUX)).toMatchObject({
      ua_browser: 'Firefox',
      ua_os: 'Linux',
      ua_device: 'desktop',
    });
  });

  it('leaves what it does not recognise empty', () => {
    expect(parser.parse('curl/8.5.0')).toEqual({
      ua_browser: '',
      ua_browser_version: '',
      ua_os: '',
      ua_os_version: '',
      ua_device: '',
    });
    expect(parser.parse('x'.repeat(10_000)).ua_browser).toBe('');
  });

  it('answers repeated user agents from its cache', () => {
    const cached = new UserAgentParser(10);
    const first = cached.parse(CHROME_WINDOWS);
    cached.parse(SAFARI_IPHONE);
    expect(cached.parse(CHROME_WINDOWS)).toBe(first);
  });
});
