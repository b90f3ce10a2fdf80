import UAParser from 'ua-parser-js';
import type { UserAgentColumns } from '@vigil/query';
import { Lru } from './lru.js';

/**
 * Browser, OS and device type of a User-Agent header, parsed with `ua-parser-js` (the 1.x line,
 * MIT-licensed; 2.x is AGPL). Parsing runs a few hundred regular expressions, so results are
 * kept in a bounded LRU map.
 */

export type UserAgentFields = UserAgentColumns;

/** OS names ua-parser-js gives desktop systems, which it reports with no device type. */
const DESKTOP_OS = new Set([
  'Windows',
  'Mac OS',
  'macOS',
  'Linux',
  'Ubuntu',
  'Debian',
  'Fedora',
  'Arch',
  'Mint',
  'Gentoo',
  'SUSE',
  'openSUSE',
  'Red Hat',
  'CentOS',
  'Chromium OS',
  'FreeBSD',
  'OpenBSD',
  'NetBSD',
  'Solaris',
]);

/** Longer strings are parsed but not cached (ua-parser-js reads the first 500 characters). */
const MAX_CACHED_LENGTH = 512;

export class UserAgentParser {
  private readonly parser = new UAParser();
  private readonly cache: Lru<string, UserAgentFields>;

  constructor(cacheSize = 10_000) {
    this.cache = new Lru(cacheSize);
  }

  parse(userAgent: string): UserAgentFields {
    const cached = this.cache.get(userAgent);
    if (cached !== undefined) return cached;
    const fields = this.compute(userAgent);
    if (userAgent.length <= MAX_CACHED_LENGTH) this.cache.set(userAgent, fields);
    return fields;
  }

  private compute(userAgent: string): UserAgentFields {
    const result = this.parser.setUA(userAgent).getResult();
    const os = result.os.name ?? '';
    const type = result.device.type ?? (DESKTOP_OS.has(os) ? 'desktop' : '');
    return Object.freeze({
      ua_browser: result.browser.name ?? '',
      ua_browser_version: result.browser.version ?? '',
      ua_os: os,
      ua_os_version: result.os.version ?? '',
      ua_device: type,
    });
  }
}
