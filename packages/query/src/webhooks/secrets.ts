import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Webhook signing secrets at rest: sealed with AES-256-GCM under a key derived (HKDF-SHA256,
 * RFC 5869) from the privacy master key (`privacy.keyFile`, kept outside the store), so whoever
 * reads the store or its backups cannot sign as Vigil. The tenant and webhook id are bound as
 * associated data: a sealed secret copied to another webhook's row does not open.
 */
export interface SecretBox {
  seal(tenant: string, webhookId: string, secret: string): string;
  open(tenant: string, webhookId: string, sealed: string): string;
}

const PREFIX = 'aesgcm1:';

const aad = (tenant: string, webhookId: string): Buffer =>
  Buffer.from(`vigil.webhook-secret.v1\u0000${tenant}\u0000${webhookId}`, 'utf8');

export function masterKeySecretBox(master: Buffer): SecretBox {
  const key = Buffer.from(
    hkdfSync('sha256', master, Buffer.alloc(0), 'vigil.webhook-secrets.v1', 32),
  );
  return {
    seal(tenant, webhookId, secret) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(tenant, webhookId));
      const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
      return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    },
    open(tenant, webhookId, sealed) {
      if (!sealed.startsWith(PREFIX)) throw new Error('not a sealed webhook secret');
      const bytes = Buffer.from(sealed.slice(PREFIX.length), 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
      decipher.setAAD(aad(tenant, webhookId));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([
        decipher.update(bytes.subarray(12, bytes.length - 16)),
        decipher.final(),
      ]).toString('utf8');
    },
  };
}

/** Keeps secrets as they are (tests, and stores whose operator accepts it). */
export const PLAIN_SECRETS: SecretBox = {
  seal: (_tenant, _id, secret) => secret,
  open: (_tenant, _id, sealed) => sealed,
};
