import type { ParsedArgs } from './args.js';
import { connectApi, type Api } from './api.js';
import type { CliContext } from './command.js';
import { configFor, stringFlag } from './command.js';
import { resolveKey } from './search.js';

/**
 * Runs `use` with the API (a running server at --url, or the local store) and the tenant's
 * admin key (--key, VIGIL_KEY, or the bootstrap credentials), and closes the API after.
 */
export async function withAdminApi<T>(
  args: ParsedArgs,
  context: CliContext,
  use: (api: Api, key: string) => Promise<T>,
): Promise<T> {
  const config = configFor('start', args, context.env);
  const key = resolveKey(args, context.env, config, 'adminKey');
  const api = await connectApi(config, stringFlag(args, 'url'));
  try {
    return await use(api, key);
  } finally {
    await api.close();
  }
}
