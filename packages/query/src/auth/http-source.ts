import type { StoredKey, Tenant } from './keys.js';
import type { KeySource } from './registry.js';

/** The body of GET /v1/operator/key-directory: what a collector needs to authenticate requests. */
export interface KeyDirectory {
  readonly tenants: Tenant[];
  readonly keys: StoredKey[];
}

/**
 * Keys from another Vigil node's key directory (`GET /v1/operator/key-directory`, operator
 * scope) instead of from ClickHouse: a collector at the edge then holds no database credentials,
 * only an operator key, and still sees new, revoked and rotated keys within `keys.refreshSeconds`.
 * It receives digests, never keys. One request answers both calls of a refresh.
 */
export class HttpKeySource implements KeySource {
  private pending: Promise<KeyDirectory> | undefined;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 5000,
  ) {}

  private load(): Promise<KeyDirectory> {
    if (!this.pending) {
      this.pending = this.fetchDirectory().finally(() => {
        // Both halves of one refresh share the request; the next refresh fetches again.
        setTimeout(() => (this.pending = undefined), 0);
      });
    }
    return this.pending;
  }

  private async fetchDirectory(): Promise<KeyDirectory> {
    const response = await fetch(`${this.url.replace(/\/$/, '')}/v1/operator/key-directory`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!response.ok) {
      throw new Error(
        `key directory at ${this.url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
      );
    }
    return (await response.json()) as KeyDirectory;
  }

  async listTenants(): Promise<Tenant[]> {
    return (await this.load()).tenants;
  }

  async listKeys(): Promise<StoredKey[]> {
    return (await this.load()).keys;
  }
}
