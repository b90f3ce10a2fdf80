import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADMIN_ACTIONS,
  OPERATOR_TENANT,
  type ChangeRecorder,
  type KeyRegistry,
  type PreparedKey,
  type TenantDirectory,
} from '@vigil/query';

export interface BootstrapCredentials {
  readonly tenant: string;
  readonly ingestKey: string;
  readonly queryKey: string;
  readonly adminKey: string;
  /** Manages tenants (scope operator, tenant _operator). */
  readonly operatorKey: string;
}

/** The actor of the changes bootstrap records. */
export const BOOTSTRAP_ACTOR = { system: 'vigil-bootstrap' } as const;

export const CREDENTIALS_FILE = 'bootstrap-credentials.json';

/**
 * First start: when no tenant exists yet, create tenant `default` with an ingest, a query and
 * an admin key, plus an operator key (tenant `_operator`), write them to
 * `<dataDir>/bootstrap-credentials.json` (mode 0600) and return them for printing, once. Later
 * starts find the tenant and do nothing. With a recorder, each creation is first recorded as
 * an audit event (actor `system:vigil-bootstrap`), like a change made through the admin API.
 */
export async function bootstrapIfEmpty(
  directory: TenantDirectory,
  registry: KeyRegistry,
  dataDir: string,
  recorder?: ChangeRecorder,
): Promise<BootstrapCredentials | undefined> {
  if ((await directory.listTenants()).length > 0) return undefined;
  const tenantId = 'default';
  const tenantName = 'Default tenant';
  const keys: PreparedKey[] = [
    directory.prepareKey({ tenantId, scopes: ['ingest'], name: 'bootstrap ingest' }),
    directory.prepareKey({ tenantId, scopes: ['query'], name: 'bootstrap query' }),
    directory.prepareKey({ tenantId, scopes: ['admin', 'query'], name: 'bootstrap admin' }),
    directory.prepareKey({
      tenantId: OPERATOR_TENANT,
      scopes: ['operator'],
      name: 'bootstrap operator',
    }),
  ];
  const [ingest, query, admin, operator] = keys as [
    PreparedKey,
    PreparedKey,
    PreparedKey,
    PreparedKey,
  ];
  if (recorder) {
    await recorder.record(tenantId, BOOTSTRAP_ACTOR, {
      action: ADMIN_ACTIONS.tenantCreated,
      target: { type: 'tenant', id: tenantId },
      metadata: { name: tenantName },
    });
    for (const key of keys) {
      await recorder.record(key.info.tenantId, BOOTSTRAP_ACTOR, {
        action: ADMIN_ACTIONS.keyCreated,
        target: { type: 'api_key', id: key.info.keyId },
        metadata: { name: key.info.name, scopes: [...key.info.scopes], expiresAt: null },
      });
    }
  }
  const tenant = await directory.createTenant(tenantId, tenantName);
  for (const key of keys) await directory.saveKey(key);
  const credentials: BootstrapCredentials = {
    tenant: tenant.id,
    ingestKey: ingest.secret,
    queryKey: query.secret,
    adminKey: admin.secret,
    operatorKey: operator.secret,
  };
  // The data directory holds the log, the store and keys: owner-only (README, "Security").
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, CREDENTIALS_FILE);
  writeFileSync(file, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // also when the file existed from an earlier, wiped store
  await registry.refresh();
  return credentials;
}

export function credentialsPath(dataDir: string): string {
  return join(dataDir, CREDENTIALS_FILE);
}

export function credentialsExist(dataDir: string): boolean {
  return existsSync(credentialsPath(dataDir));
}

export function formatCredentials(c: BootstrapCredentials, file: string): string {
  return [
    '',
    '  Vigil created tenant "default", its first API keys and an operator key. They are shown',
    `  only this once (also saved to ${file}, readable by you alone):`,
    '',
    `    ingest key  ${c.ingestKey}`,
    `    query key   ${c.queryKey}`,
    `    admin key   ${c.adminKey}`,
    '',
    `    operator key ${c.operatorKey}`,
    '    (manages tenants: vigil tenants --help)',
    '',
  ].join('\n');
}
