import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QueryError, QueryErrorCodes } from '../errors.js';

/**
 * Time-limited signed download links: a URL that anyone holding it may GET, without an API key,
 * until it expires. Any feature that hands out a download reuses this (a search export, a review
 * pack, a tenant export): it signs the path and query of the download, and the route that serves
 * it verifies the link before anything else.
 *
 * The signature is HMAC-SHA256 (RFC 2104) under a secret of the server, over a canonical form of
 * the method, path, every query parameter but the signature (sorted, each value as given), the
 * tenant and the expiry: changing any byte of them, or adding or removing a parameter, fails the
 * check. A link says which tenant it is for (`tenant`) and the key that asked for it (`by`), so
 * that the download is served from that tenant only and recorded as that key's action.
 */

/** The query parameters a link adds to the download's own. */
export const LINK_PARAMS = ['tenant', 'by', 'expires', 'sig'] as const;

/** Longest validity a link may be given: a link is a bearer credential, kept short. */
export const MAX_LINK_SECONDS = 7 * 86_400;

export const LINK_SECRET_FILE = 'link-secret';

export interface SignedLink {
  /** Path and query, to append to the server's base URL. */
  readonly url: string;
  /** When it stops working (RFC 3339). */
  readonly expiresAt: string;
}

/** What a verified link grants. */
export interface LinkGrant {
  readonly tenant: string;
  /** Id of the API key that asked for the link. */
  readonly by: string;
  readonly expiresAt: number;
  /** The download's own parameters (the link's taken out). */
  readonly query: Record<string, string>;
}

type Query = Record<string, unknown>;

function canonical(method: string, path: string, query: Readonly<Record<string, string>>): string {
  const pairs = Object.keys(query)
    .filter((k) => k !== 'sig')
    .sort()
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k] as string)}`);
  return `vigil-link-v1\n${method.toUpperCase()}\n${path}\n${pairs.join('&')}`;
}

export class LinkSigner {
  private readonly secret: Buffer;

  constructor(secret: Buffer) {
    if (secret.length < 32) throw new Error('a link secret has at least 32 bytes');
    this.secret = secret;
  }

  /**
   * The signer of a data directory: its secret is the file `link-secret` there (created with 32
   * random bytes, owner-only, on first use). Every process that serves links of one deployment
   * must see the same file (shared data directory, or a copy).
   */
  static ofDataDir(dataDir: string): LinkSigner {
    const file = join(dataDir, LINK_SECRET_FILE);
    let secret: Buffer;
    try {
      secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    } catch {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const fresh = randomBytes(32);
      try {
        // 'wx': two processes starting at once do not overwrite each other's secret.
        writeFileSync(file, fresh.toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
        chmodSync(file, 0o600);
        secret = fresh;
      } catch {
        secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
      }
    }
    return new LinkSigner(secret);
  }

  /** A MAC of `text` in a domain of its own (pagination cursors use it). */
  mac(text: string): string {
    return createHmac('sha256', this.secret)
      .update(`vigil-mac-v1\n${text}`)
      .digest('base64url')
      .slice(0, 32);
  }

  /**
   * A link to GET `path` with `query` for `tenant`, asked for by key `by`, valid `seconds`
   * from `now` (epoch ms).
   */
  sign(
    path: string,
    query: Readonly<Record<string, string>>,
    grant: { tenant: string; by: string; seconds: number; now?: number },
  ): SignedLink {
    for (const k of LINK_PARAMS)
      if (Object.hasOwn(query, k)) throw new Error(`a link's own query cannot name ${k}`);
    const expires = Math.floor((grant.now ?? Date.now()) / 1000) + Math.ceil(grant.seconds);
    const full: Record<string, string> = {
      ...query,
      tenant: grant.tenant,
      by: grant.by,
      expires: String(expires),
    };
    const sig = createHmac('sha256', this.secret)
      .update(canonical('GET', path, full))
      .digest('base64url');
    const search = new URLSearchParams({ ...full, sig });
    return {
      url: `${path}?${search.toString()}`,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  }

  /**
   * The grant of a link to `path` whose query string fastify parsed as `query`; throws
   * VIGIL_ERR_LINK_INVALID (a byte changed, a parameter repeated) or VIGIL_ERR_LINK_EXPIRED.
   */
  verify(path: string, query: Query, now: number = Date.now()): LinkGrant {
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      // A parameter given twice is never what was signed (the signer writes each once).
      if (typeof v !== 'string') throw invalid();
      flat[k] = v;
    }
    const { sig, tenant, by, expires } = flat;
    if (sig === undefined || tenant === undefined || by === undefined || expires === undefined)
      throw invalid();
    const expected = createHmac('sha256', this.secret)
      .update(canonical('GET', path, flat))
      .digest();
    const given = Buffer.from(sig, 'base64url');
    // Checked before the expiry: an altered expiry is a forgery, not an expired link.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
    if (!/^\d{1,12}$/.test(expires)) throw invalid();
    const expiresAt = Number(expires) * 1000;
    if (now >= expiresAt)
      throw new QueryError(
        QueryErrorCodes.LINK_EXPIRED,
        `this link expired at ${new Date(expiresAt).toISOString()}; ask for a new one`,
        { status: 410 },
      );
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(flat))
      if (!(LINK_PARAMS as readonly string[]).includes(k)) own[k] = v;
    return { tenant, by, expiresAt, query: own };
  }
}

function invalid(): QueryError {
  return new QueryError(
    QueryErrorCodes.LINK_INVALID,
    'this link is not one this server signed, or it was changed; ask for a new one',
    { status: 403, details: [{ path: '/sig', message: 'does not match the link' }] },
  );
}
