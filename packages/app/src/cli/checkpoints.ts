import { parseCheckpoint, verifyCheckpoint, type SignedCheckpoint } from '@vigil/protocol';
import { rotateCheckpointKey } from '@vigil/collector';
import { ConfigError } from '@vigil/collector';
import { connectApi, ensureOk } from './api.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';
import { publicKeyFromFlag, publishedKeys } from './proof.js';
import { resolveKey } from './search.js';

export const CHECKPOINTS_HELP = `Usage: vigil checkpoints [--limit N] [--json] [--public-key KEY] [--url URL] [--key KEY]
       vigil checkpoints rotate-key [--checkpoint-key-dir DIR]

Lists the signed checkpoints of the key's tenant, newest first, each verified with the public
keys (the server's published keys, or the one given with --public-key).

  --limit N       how many (1-1000, default 20)
  --json          one signed checkpoint per line, as the API returns it

rotate-key adds a new key to the checkpoint key directory (checkpoint.keyDir, default
<dataDir>/keys) and retires the current one: its public key stays published, its private key is
deleted. The sink signs with the new key from its next start.
`;

interface Listed extends SignedCheckpoint {
  readonly time: string;
  readonly keyId: string;
}

export const checkpointsCommand: CliCommand = {
  name: 'checkpoints',
  summary: "List the tenant's signed checkpoints, or rotate the checkpoint signing key.",
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    'public-key': { type: 'string' },
  },
  help: () => CHECKPOINTS_HELP,
  async run(args, context) {
    const config = configFor('start', args, context.env);
    const [sub, ...rest] = args.positionals;
    if (sub === 'rotate-key') {
      if (rest.length > 0) throw new ConfigError('rotate-key takes no arguments; see --help');
      const signer = config.checkpoint.signer;
      if (signer.kind !== 'file')
        throw new ConfigError(
          'checkpoint.signer is command: rotate the key where the external signer keeps it, then set checkpoint.signerPublicKey',
        );
      const { previous, current } = rotateCheckpointKey(signer.dir);
      context.print(
        `new checkpoint key ${current}${previous ? `; ${previous} is retired (its public key stays published)` : ''}`,
      );
      context.print('restart the sink (vigil start or vigil sink) to sign with it');
      return 0;
    }
    if (sub !== undefined) throw new ConfigError(`unknown subcommand "${sub}"; see --help`);
    const limitText = stringFlag(args, 'limit') ?? '20';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ConfigError('--limit must be a whole number from 1 to 1000');
    const key = resolveKey(args, context.env, config);
    const pinned = stringFlag(args, 'public-key');
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      const page = ensureOk(
        await api.call<{ checkpoints: Listed[] }>('GET', `/v1/checkpoints?limit=${limit}`, key),
      );
      if (args.local['json'] === true) {
        for (const c of page.checkpoints)
          context.print(
            JSON.stringify({ id: c.id, checkpoint: c.checkpoint, signature: c.signature }),
          );
        return 0;
      }
      if (page.checkpoints.length === 0) {
        context.print('no checkpoint yet');
        return 0;
      }
      const keys = pinned
        ? [publicKeyFromFlag(pinned)]
        : (await publishedKeys(api, key)).map((k) => k.publicKey);
      context.print(
        ['TIME'.padEnd(24), 'ID'.padEnd(16), 'KEY'.padEnd(16), 'VERIFIED', 'PARTITION:SIZE'].join(
          ' ',
        ),
      );
      let bad = 0;
      for (const c of page.checkpoints) {
        const verdict = verifyCheckpoint(c, keys);
        if (!verdict.ok) bad++;
        const parsed = parseCheckpoint(c.checkpoint);
        const heads = parsed.ok
          ? parsed.statement.partitions.map((p) => `${p.partition}:${p.size}`).join(' ')
          : '?';
        context.print(
          [
            c.time.padEnd(24),
            c.id.slice(0, 16),
            c.keyId.padEnd(16),
            (verdict.ok ? 'yes' : 'NO').padEnd(8),
            heads,
          ].join(' '),
        );
      }
      if (bad > 0) {
        context.printError(
          `${bad} checkpoint(s) do not verify with the ${pinned ? 'pinned' : 'published'} keys`,
        );
        return 1;
      }
      return 0;
    } finally {
      await api.close();
    }
  },
};
