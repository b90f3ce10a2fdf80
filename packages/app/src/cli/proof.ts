import { existsSync, readFileSync } from 'node:fs';
import {
  parseCheckpoint,
  verifyInclusionProof,
  type InclusionProof,
  type PublishedKey,
} from '@vigil/protocol';
import { ConfigError } from '@vigil/collector';
import type { ParsedArgs } from './args.js';
import { connectApi, ensureOk, type Api } from './api.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';
import { resolveKey } from './search.js';

export const PROOF_HELP = `Usage: vigil proof <event-id> [--checkpoint ID|SIZE] [--hash HEX]
                   [--public-key FILE|BASE64URL] [--json] [--url URL] [--key KEY]

Fetches the inclusion proof of an event against a signed checkpoint and verifies it here, with
the public key alone (PROTOCOL.md §15.3): the checkpoint's signature, the leaf that binds the
event's tenant, stream, seq and hash, and the audit path to the signed root. Exit code 0 when it
verifies, 1 when it does not.

  --checkpoint ID|SIZE   prove against this checkpoint (its id, or the event's tree size in it);
                         default: the newest checkpoint that covers the event
  --hash HEX             the event hash, when several stored copies share the id
  --public-key KEY       trust only this key (a PEM file or the raw key in base64url); default:
                         the keys the server publishes at /v1/keys/checkpoint. Pin the key you
                         got out of band: a server that rewrote its log can publish a new key.
  --json                 print the proof and the verdict as JSON
  --url URL / --key KEY  server and query key, as for vigil search
`;

/** A public key from a flag: a PEM file, or raw base64url. */
export function publicKeyFromFlag(value: string): string {
  if (/^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  if (existsSync(value)) return readFileSync(value, 'utf8');
  throw new ConfigError(`--public-key: "${value}" is neither a base64url Ed25519 key nor a file`);
}

/** The published checkpoint keys of a server. */
export async function publishedKeys(api: Api, key: string): Promise<PublishedKey[]> {
  return ensureOk(await api.call<{ keys: PublishedKey[] }>('GET', '/v1/keys/checkpoint', key)).keys;
}

function trustedKeys(args: ParsedArgs): string[] | undefined {
  const flag = stringFlag(args, 'public-key');
  return flag === undefined ? undefined : [publicKeyFromFlag(flag)];
}

export const proofCommand: CliCommand = {
  name: 'proof',
  summary: 'Fetch and verify the inclusion proof of an event against a signed checkpoint.',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    checkpoint: { type: 'string' },
    hash: { type: 'string' },
    'public-key': { type: 'string' },
    json: { type: 'boolean' },
  },
  help: () => PROOF_HELP,
  async run(args, context) {
    const eventId = args.positionals[0];
    if (!eventId || args.positionals.length > 1)
      throw new ConfigError('give exactly one event id: vigil proof <event-id>; see --help');
    const config = configFor('start', args, context.env);
    const key = resolveKey(args, context.env, config);
    const pinned = trustedKeys(args);
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      const params = new URLSearchParams({ event: eventId });
      const checkpoint = stringFlag(args, 'checkpoint');
      if (checkpoint) params.set('checkpoint', checkpoint);
      const hash = stringFlag(args, 'hash');
      if (hash) params.set('hash', hash);
      const proof = ensureOk(
        await api.call<InclusionProof>('GET', `/v1/proofs/inclusion?${params.toString()}`, key),
      );
      const keys = pinned ?? (await publishedKeys(api, key)).map((k) => k.publicKey);
      const verdict = verifyInclusionProof(proof, keys);
      if (args.local['json'] === true) {
        context.print(
          JSON.stringify({
            verified: verdict.ok,
            ...(verdict.ok ? {} : { problem: verdict.problem }),
            keys: pinned ? 'pinned' : 'published by the server',
            proof,
          }),
        );
        return verdict.ok ? 0 : 1;
      }
      const parsed = parseCheckpoint(proof.checkpoint.checkpoint);
      const statement = parsed.ok ? parsed.statement : undefined;
      context.print(`event       ${proof.eventId}`);
      context.print(
        `leaf        ${proof.leafIndex} of ${proof.treeSize} in partition ${proof.partition}${statement ? ` (tenant ${statement.tenant})` : ''}`,
      );
      context.print(`stream      ${proof.leaf.stream} seq ${proof.leaf.seq}`);
      context.print(`event hash  ${proof.leaf.eventHash}`);
      context.print(
        `checkpoint  ${proof.checkpoint.id}${statement ? ` signed ${statement.time} by key ${statement.keyId}` : ''}`,
      );
      context.print(`root        ${proof.root}`);
      context.print(`audit path  ${proof.auditPath.length} hashes`);
      if (proof.record === undefined)
        context.print('record      no longer stored (retention); the leaf still proves it existed');
      if (verdict.ok) {
        context.print(
          `verified    yes, with ${pinned ? 'the pinned key' : 'a key the server publishes (pin it with --public-key)'}`,
        );
        return 0;
      }
      context.printError(`verified    NO: ${verdict.problem}`);
      return 1;
    } finally {
      await api.close();
    }
  },
};
