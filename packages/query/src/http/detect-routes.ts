import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { builtinRules, DetectionEngine, loadRules } from '@vigil/detect';
import type { KeyRegistry } from '../auth/registry.js';
import { checkBacktestRequest, formatBacktest, runBacktest } from '../detect/backtest.js';
import type { PrivacyService } from '../privacy/service.js';
import type { Store } from '../store/store.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { fileAnswer } from './schemas.js';
import { incompleteOnError } from './streaming.js';

export interface DetectRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  /** Opens pseudonymised disclosures, as the live detector sees plain values. */
  readonly privacy?: PrivacyService;
}

interface BacktestBody {
  from: string;
  to: string;
  rules?: string;
  overrides?: Record<string, unknown>;
  format?: string;
}

const MEDIA = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
} as const;

/**
 * POST /v1/detect/backtest (scope admin): a backtest (detect/backtest.ts) over the key's own
 * tenant, never another's. The rules (YAML text; default the built-in pack) and the overrides
 * are checked before the answer starts (400 naming the rule, line and field); the alerts are
 * then streamed in the format asked for. Nothing is delivered or stored.
 */
export function registerDetectRoutes(app: FastifyInstance, options: DetectRoutesOptions): void {
  app.post(
    '/v1/detect/backtest',
    {
      onRequest: requireScope(options.registry, 'admin', options.onAuthFailure),
      schema: {
        response: {
          200: fileAnswer('the alerts the rules would have raised, in the format asked for', [
            MEDIA.json,
            MEDIA.ndjson,
            'text/csv',
          ]),
        },
        description:
          "Runs detection rules over the tenant's stored events with event times in [from, to) (late and backfilled ones included), with the baseline generations the live detector used, and returns the alerts it would have raised (json: {summary, alerts}; ndjson: one alert per line, the summary last; csv). Nothing is delivered.",
        tags: ['detection'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: {
            from: { type: 'string', maxLength: 40, description: 'RFC 3339, inclusive' },
            to: { type: 'string', maxLength: 40, description: 'RFC 3339, exclusive' },
            rules: {
              type: 'string',
              maxLength: 1_048_576,
              description: 'rule YAML (documents separated by ---); default the built-in pack',
            },
            overrides: {
              type: 'object',
              description: 'detect overrides: thresholds, allow-lists, time zone, action maps',
            },
            format: { type: 'string', enum: ['json', 'ndjson', 'csv'] },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as BacktestBody;
      const tenant = tenantOf(request);
      const { from, to, format } = checkBacktestRequest(body);
      const rules =
        body.rules === undefined
          ? builtinRules()
          : loadRules([{ file: 'rules', text: body.rules }]);
      // The overrides apply to this tenant only: whatever the body names, it is this tenant's.
      const overrides =
        body.overrides === undefined ? undefined : { tenants: { [tenant]: body.overrides } };
      // Refuses bad overrides (400, each setting named) before the answer starts.
      new DetectionEngine({ rules, overrides });
      const result = await runBacktest({
        store: options.store,
        tenant,
        from,
        to,
        rules,
        overrides,
        ...(options.privacy ? { privacy: options.privacy } : {}),
      });
      // An async generator over the formatted chunks, as incompleteOnError takes one.
      const chunks = async function* (): AsyncGenerator<string> {
        await Promise.resolve();
        yield* formatBacktest(result, format);
      };
      return reply
        .header('content-type', MEDIA[format])
        .header('x-vigil-alerts', String(result.alerts.length))
        .send(Readable.from(incompleteOnError(chunks(), request.log)));
    },
  );
}
