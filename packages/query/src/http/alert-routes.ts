import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { formatTime, parseTime, VigilError, type JsonObject } from '@vigil/protocol';
import type { KeyRegistry } from '../auth/registry.js';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import { pseudonymiseAlert } from '../alerts/privacy.js';
import {
  ALERT_GROUPS,
  AlertTriage,
  MAX_BULK,
  MAX_PAGE,
  TRIAGE_STATES,
  type AlertGroup,
  type AlertGrouping,
  type AlertQuery,
  type TriageChange,
  type TriagedAlert,
  type TriageState,
} from '../alerts/triage.js';
import { isPseudonym, pseudonymOf, type RowPrivacy } from '../privacy/pseudonyms.js';
import type { PrivacyService } from '../privacy/service.js';
import type { Store } from '../store/store.js';
import { recordThenApply, type AdminChange, type ChangeRecorder } from '../system/changes.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';

/**
 * The alerts of the key's tenant (`/v1/alerts`): read with scope `query`; triaged (state,
 * assignee, notes, bulk changes) with scope `triage` or `admin`. Triage is a change an auditor
 * must be able to account for (closing an alert hides an attack), so a read-only query key —
 * dashboards, exports — cannot make it, and an analyst need not hold `admin` (which can erase
 * people) to make it. Every triage change is recorded as an audit event of the tenant before it
 * is made (`alert.triaged`; notes and assignees as personal, erasable values); a change that
 * cannot be recorded is refused.
 */

export interface AlertRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly recorder?: ChangeRecorder;
  /** Shows pseudonymised fields as the tenant's pseudonyms. */
  readonly privacy?: PrivacyService;
  /** How long triage is kept (alerts.retentionDays). */
  readonly retentionDays?: number;
  /** Counts triage changes (metrics): one per alert changed. */
  readonly onTriage?: (state: TriageState | 'none', alerts: number) => void;
  readonly onAuthFailure?: AuthObserver;
}

/** Actions of the audit events of triage. */
export const ALERT_ACTIONS = { triaged: 'alert.triaged' } as const;

/** Alert ids listed in one audit event; the triage rows name the event, so all can be found. */
const LISTED_IDS = 100;

const text = (description: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'string', description, ...extra }) as const;
const csv = (description: string) => text(`comma-separated: ${description}`);

const listQuery = {
  type: 'object',
  properties: {
    state: csv(`states in force (${TRIAGE_STATES.join(', ')})`),
    severity: csv('severities'),
    rule: csv('rule ids'),
    entity: text('a value of the entity: an account, an address, an API key (or its pseudonym)'),
    assignee: text('the assignee'),
    from: text('alerts whose window ends at or after this time (RFC 3339 UTC, ms)'),
    to: text('alerts whose window starts before this time'),
    groupBy: { type: 'string', enum: [...ALERT_GROUPS], description: 'groups instead of alerts' },
    limit: text(`page size, 1-${MAX_PAGE} (default 100)`),
    cursor: text('nextCursor of the previous page'),
    includeRestricted: {
      type: 'string',
      enum: ['true', 'false'],
      description:
        "also alerts raised from restricted subjects' events (GDPR Art. 18): needs a key with scope admin too, and is recorded",
    },
  },
  additionalProperties: false,
} as const;

const getQuery = {
  type: 'object',
  properties: { includeRestricted: listQuery.properties.includeRestricted },
  additionalProperties: false,
} as const;

const changeProperties = {
  state: { type: 'string', enum: [...TRIAGE_STATES] },
  until: text('with accepted_risk: when the acceptance ends (RFC 3339 UTC, ms); then open again'),
  assignee: {
    type: 'string',
    nullable: true,
    minLength: 1,
    maxLength: 256,
    description: 'a person or team; null unassigns (recorded as personal data)',
  },
  note: { type: 'string', minLength: 1, maxLength: 4000, description: 'a note (personal data)' },
  reason: { type: 'string', minLength: 1, maxLength: 1000, description: 'why the state changes' },
} as const;

const changeBody = {
  type: 'object',
  properties: changeProperties,
  additionalProperties: false,
} as const;

const bulkBody = {
  type: 'object',
  required: ['change'],
  properties: {
    ids: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_BULK,
      items: { type: 'string', minLength: 1, maxLength: 128 },
      description: 'the alerts to change; or select them by rule, entity, state, severity',
    },
    rule: text('every alert of this rule', { minLength: 1, maxLength: 256 }),
    entity: text('every alert of this entity value', { minLength: 1, maxLength: 1024 }),
    state: {
      type: 'array',
      items: { type: 'string', enum: [...TRIAGE_STATES] },
      description: 'only alerts in these states (with rule or entity)',
    },
    severity: { type: 'array', items: { type: 'string', maxLength: 64 } },
    change: changeBody,
  },
  additionalProperties: false,
} as const;

const noteBody = {
  type: 'object',
  required: ['text'],
  properties: { text: changeProperties.note },
  additionalProperties: false,
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

const triageSchema = {
  type: 'object',
  required: [
    'state',
    'setState',
    'until',
    'assignee',
    'notes',
    'changes',
    'changedAt',
    'changedBy',
  ],
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: [...TRIAGE_STATES], description: 'the state in force' },
    setState: {
      type: 'string',
      enum: [...TRIAGE_STATES],
      description: 'the state last set: accepted_risk when an expired acceptance reads as open',
    },
    until: { type: 'string', nullable: true, description: 'expiry of an accepted risk' },
    assignee: { type: 'string', nullable: true },
    notes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['author', 'at', 'text'],
        additionalProperties: false,
        properties: {
          author: text('the API key that wrote it'),
          at: text('RFC 3339 UTC'),
          text: { type: 'string' },
        },
      },
    },
    changes: { type: 'integer', description: 'field changes recorded (state, assignee, note)' },
    changedAt: { type: 'string', nullable: true },
    changedBy: { type: 'string', nullable: true, description: 'the API key of the last change' },
  },
} as const;

export const alertSchema = {
  type: 'object',
  description: 'one alert with its triage',
  required: ['id', 'ruleId', 'title', 'severity', 'entity', 'firstEventTime', 'lastEventTime'],
  additionalProperties: false,
  properties: {
    id: text('stable id of the grouped alert'),
    ruleId: text('the rule that raised it'),
    title: text("the rule's title"),
    severity: text('low, medium, high, critical'),
    attack: { type: 'array', items: { type: 'string' }, description: 'MITRE ATT&CK techniques' },
    entity: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description:
        "the rule's group-by fields and their values (pseudonyms where the tenant pseudonymises them)",
    },
    firstEventTime: text('event time of the first event, RFC 3339 UTC'),
    lastEventTime: text('event time of the last event'),
    eventIds: {
      type: 'array',
      items: { type: 'string' },
      description: 'events that raised it (capped)',
    },
    eventCount: { type: 'integer', description: 'events that contributed, beyond the cap too' },
    evidence: {
      type: 'object',
      additionalProperties: true,
      description: "the rule's evidence: counts, distinct values, distance and speed …",
    },
    version: { type: 'integer', description: 'grows by one each time the alert grows' },
    raisedAt: text('when the detector raised it'),
    updatedAt: text('when it last grew'),
    triage: triageSchema,
  },
} as const;

const groupSchema = {
  type: 'object',
  required: ['key', 'alerts', 'states', 'severities', 'rules', 'firstEventTime', 'lastEventTime'],
  additionalProperties: false,
  properties: {
    key: text('the rule id, the account, or the address ("" when the alerts name none)'),
    alerts: { type: 'integer' },
    states: {
      type: 'object',
      additionalProperties: { type: 'integer' },
      description: 'alerts per state in force',
    },
    severities: { type: 'object', additionalProperties: { type: 'integer' } },
    rules: { type: 'array', items: { type: 'string' } },
    firstEventTime: { type: 'string' },
    lastEventTime: { type: 'string' },
  },
} as const;

const changedAnswer = {
  type: 'object',
  description: 'what the change did',
  required: ['changed', 'event'],
  additionalProperties: false,
  properties: {
    changed: { type: 'integer', description: 'alerts changed' },
    event: text('id of the audit event that records the change'),
    alert: alertSchema,
  },
} as const;

const list = (value: unknown): string[] | undefined =>
  typeof value === 'string' && value.length > 0
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : undefined;

function timeParam(value: unknown, path: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? parseTime(value) : undefined;
  if (ms === undefined)
    throw new InvalidQueryError(`${path.slice(1)} is not a time`, [
      { path, message: 'must be RFC 3339 UTC with milliseconds, e.g. 2026-11-23T08:00:00.000Z' },
    ]);
  return ms;
}

function statesParam(
  values: readonly string[] | undefined,
  path: string,
): TriageState[] | undefined {
  if (!values) return undefined;
  const bad = values.filter((s) => !(TRIAGE_STATES as readonly string[]).includes(s));
  if (bad.length > 0)
    throw new InvalidQueryError('unknown triage state', [
      { path, message: `${bad.join(', ')}: must be one of ${TRIAGE_STATES.join(', ')}` },
    ]);
  return values as TriageState[];
}

function alertNotFound(id: string): QueryError {
  return new QueryError(QueryErrorCodes.ALERT_NOT_FOUND, `no alert ${id} in this tenant`, {
    status: 404,
    details: [{ path: '/id', message: 'no such alert' }],
  });
}

function view(alert: TriagedAlert): Record<string, unknown> {
  const t = alert.triage;
  const { tenant: _tenant, key: _key, ...rest } = alert;
  return {
    ...rest,
    firstEventTime: formatTime(alert.firstEventTime),
    lastEventTime: formatTime(alert.lastEventTime),
    raisedAt: formatTime(alert.raisedAt),
    updatedAt: formatTime(alert.updatedAt),
    triage: {
      ...t,
      until: t.until === null ? null : formatTime(t.until),
      changedAt: t.changedAt === null ? null : formatTime(t.changedAt),
      notes: t.notes.map((n) => ({ ...n, at: formatTime(n.at) })),
    },
  };
}

function groupView(
  group: AlertGroup,
  grouping: AlertGrouping,
  rp: RowPrivacy | undefined,
): Record<string, unknown> {
  let key = group.key;
  if (rp && key !== '' && grouping !== 'rule') {
    if (grouping === 'address' && rp.fields.has('ip'))
      key = pseudonymOf(rp.pseudonymKey, 'ip', key);
    else if (grouping === 'entity' && key.startsWith('{')) {
      const entity = JSON.parse(key) as Record<string, string>;
      key = JSON.stringify(pseudonymiseAlert({ entity, evidence: {} } as TriagedAlert, rp).entity);
    } else if (grouping === 'entity' && rp.fields.has('id'))
      key = pseudonymOf(rp.pseudonymKey, 'id', key);
  }
  return {
    ...group,
    key,
    firstEventTime: formatTime(group.firstEventTime),
    lastEventTime: formatTime(group.lastEventTime),
  };
}

export function registerAlertRoutes(app: FastifyInstance, options: AlertRoutesOptions): void {
  const { store, registry } = options;
  const triage = new AlertTriage(store, {
    ...(options.retentionDays !== undefined ? { retentionDays: options.retentionDays } : {}),
  });
  const read = requireScope(registry, 'query', options.onAuthFailure);
  const tags = ['alerts'];
  const security = [{ bearer: [] }];

  /** Admits keys with scope `triage`, or else `admin`. */
  const change: onRequestHookHandler = (
    request: FastifyRequest,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ) => {
    const first = registry.authenticate(request.headers.authorization, 'triage', request.ip);
    const result =
      !first.ok && first.status === 403 && first.code === QueryErrorCodes.FORBIDDEN
        ? registry.authenticate(request.headers.authorization, 'admin', request.ip)
        : first;
    if (result.ok) {
      request.vigilKey = result.key;
      request.vigilScope = result.key.scopes.includes('triage') ? 'triage' : 'admin';
      done();
      return;
    }
    const refused = first.ok ? result : first;
    if (refused.ok) return done();
    options.onAuthFailure?.(refused.status, 'triage');
    done(
      new VigilError(
        refused.code,
        refused.status === 403 && refused.code === QueryErrorCodes.FORBIDDEN
          ? `${refused.reason}; triage needs scope triage or admin`
          : refused.reason,
        { status: refused.status },
      ),
    );
  };

  const rowPrivacy = (tenant: string): Promise<RowPrivacy | undefined> =>
    options.privacy ? options.privacy.rowPrivacy(tenant) : Promise.resolve(undefined);

  const shown = async (tenant: string, alert: TriagedAlert): Promise<Record<string, unknown>> =>
    view(pseudonymiseAlert(alert, await rowPrivacy(tenant)));

  /** An entity filter given as a pseudonym: the plain values it stands for. */
  const entityFilter = async (tenant: string, value: string): Promise<string> => {
    const rp = await rowPrivacy(tenant);
    if (!rp || !isPseudonym(value)) return value;
    return (await triage.entityValueOf(tenant, value, rp)) ?? value;
  };

  /**
   * Whether the request asks for restricted subjects' alerts too; allowed to a key that also has
   * scope admin, on a server that records the access, which is recorded before anything is shown.
   */
  const restrictedAccess = async (request: FastifyRequest): Promise<boolean> => {
    if ((request.query as Record<string, unknown>)['includeRestricted'] !== 'true') return false;
    const key = request.vigilKey;
    const recorder = options.recorder;
    if (!key?.scopes.includes('admin') || !recorder)
      throw new QueryError(
        QueryErrorCodes.FORBIDDEN,
        "alerts of restricted subjects are shown only to a key with scope admin, on a server that records the access (GDPR Art. 18); use the tenant's admin key",
        { status: 403, details: [{ path: '/includeRestricted', message: 'needs scope admin' }] },
      );
    const tenant = tenantOf(request);
    await recorder.record(tenant, key.keyId, {
      action: 'restricted_alerts.viewed',
      category: 'data_access',
      target: { type: 'tenant', id: tenant },
      metadata: { route: request.routeOptions.url ?? '' },
    });
    return true;
  };

  const changeOf = (body: Record<string, unknown>): TriageChange => {
    const until = timeParam(body['until'], '/until');
    return {
      ...(body['state'] !== undefined ? { state: body['state'] as TriageState } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(body['assignee'] !== undefined ? { assignee: body['assignee'] as string | null } : {}),
      ...(body['note'] !== undefined ? { note: body['note'] as string } : {}),
      ...(body['reason'] !== undefined ? { reason: body['reason'] as string } : {}),
    };
  };

  /** Records the change as an audit event, then writes it: none happens unrecorded. */
  const recordAndApply = async (
    request: FastifyRequest,
    ids: readonly string[],
    changeToMake: TriageChange,
    selection: JsonObject | undefined,
  ): Promise<{ changed: number; event: string }> => {
    const tenant = tenantOf(request);
    const keyId = request.vigilKey?.keyId ?? '';
    const recorder = options.recorder;
    if (!recorder)
      throw new QueryError(
        QueryErrorCodes.TRIAGE_UNAVAILABLE,
        'this process cannot record audit events of triage (it has no log), so it makes no triage change; use a server that runs the collector',
        { status: 503 },
      );
    await triage.validate(changeToMake);
    const metadata: Record<string, JsonObject[keyof JsonObject]> = {
      alerts: ids.slice(0, LISTED_IDS),
      count: ids.length,
    };
    const personal: string[] = [];
    if (changeToMake.state !== undefined) metadata['state'] = changeToMake.state;
    if (changeToMake.until !== undefined) metadata['until'] = formatTime(changeToMake.until);
    if (changeToMake.reason !== undefined) {
      metadata['reason'] = changeToMake.reason;
      personal.push('/metadata/reason');
    }
    if (changeToMake.assignee !== undefined) {
      metadata['assignee'] = changeToMake.assignee;
      // An assignee names a person (or a team): committed, so it can be erased.
      if (changeToMake.assignee !== null) personal.push('/metadata/assignee');
    }
    if (changeToMake.note !== undefined) {
      metadata['note'] = changeToMake.note;
      personal.push('/metadata/note');
    }
    if (selection) {
      metadata['selection'] = selection;
      if (selection['entity'] !== undefined) personal.push('/metadata/selection/entity');
    }
    const event: AdminChange = {
      action: ALERT_ACTIONS.triaged,
      category: 'security',
      target:
        ids.length === 1 ? { type: 'alert', id: ids[0] as string } : { type: 'tenant', id: tenant },
      metadata,
      personal,
    };
    let eventId = '';
    await recordThenApply(
      async (c) => {
        const recorded = await recorder.record(tenant, keyId, c);
        if (eventId === '') eventId = recorded.id;
        return recorded;
      },
      event,
      () => triage.apply(tenant, ids, changeToMake, { keyId, eventId }),
    );
    options.onTriage?.(changeToMake.state ?? 'none', ids.length);
    return { changed: ids.length, event: eventId };
  };

  app.get(
    '/v1/alerts',
    {
      onRequest: read,
      schema: {
        description:
          "The alerts of the key's tenant with their triage, newest last event first, or (groupBy) groups of them by rule, account or address; filtered, with cursor pages. Alerts raised from a restricted subject's events are not shown unless includeRestricted=true (a key that also has scope admin; recorded).",
        tags,
        security,
        querystring: listQuery,
        response: {
          200: {
            type: 'object',
            description: 'a page of alerts, or of groups with groupBy',
            additionalProperties: false,
            properties: {
              alerts: { type: 'array', items: alertSchema },
              groupBy: { type: 'string', enum: [...ALERT_GROUPS] },
              groups: { type: 'array', items: groupSchema },
              nextCursor: text('pass as cursor for the next page; absent on the last'),
            },
          },
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const q = request.query as Record<string, string | undefined>;
      let limit: number | undefined;
      if (q['limit'] !== undefined) {
        limit = Number(q['limit']);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
          throw new InvalidQueryError('invalid limit', [
            { path: '/limit', message: `must be an integer 1-${MAX_PAGE}` },
          ]);
      }
      const states = statesParam(list(q['state']), '/state');
      const severities = list(q['severity']);
      const rules = list(q['rule']);
      const from = timeParam(q['from'], '/from');
      const to = timeParam(q['to'], '/to');
      const query: AlertQuery = {
        ...(states ? { states } : {}),
        ...(severities ? { severities } : {}),
        ...(rules ? { rules } : {}),
        ...(q['entity'] ? { entity: await entityFilter(tenant, q['entity']) } : {}),
        ...(q['assignee'] ? { assignee: q['assignee'] } : {}),
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(q['cursor'] ? { cursor: q['cursor'] } : {}),
        ...((await restrictedAccess(request)) ? { includeRestricted: true } : {}),
      };
      const grouping = q['groupBy'] as AlertGrouping | undefined;
      if (grouping) {
        const page = await triage.groups(tenant, grouping, query);
        const rp = await rowPrivacy(tenant);
        return {
          groupBy: grouping,
          groups: page.items.map((g) => groupView(g, grouping, rp)),
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        };
      }
      const page = await triage.list(tenant, query);
      const rp = await rowPrivacy(tenant);
      return {
        alerts: page.items.map((a) => view(pseudonymiseAlert(a, rp))),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      };
    },
  );

  app.get(
    '/v1/alerts/:id',
    {
      onRequest: read,
      schema: {
        description:
          "One alert with its triage: state, assignee, notes. An alert raised from a restricted subject's events answers 404 unless includeRestricted=true (admin, recorded).",
        tags,
        security,
        params: idParams,
        querystring: getQuery,
        response: { 200: alertSchema },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { id } = request.params as { id: string };
      const includeRestricted = await restrictedAccess(request);
      const alert = await triage.get(tenant, id, { includeRestricted });
      if (!alert) throw alertNotFound(id);
      return shown(tenant, alert);
    },
  );

  app.patch(
    '/v1/alerts/:id',
    {
      onRequest: change,
      schema: {
        description:
          'Triage one alert: state (accepted_risk with until), assignee, a note. Scope triage or admin; recorded as an audit event (alert.triaged) before it is made.',
        tags,
        security,
        params: idParams,
        body: changeBody,
        response: { 200: changedAnswer },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { id } = request.params as { id: string };
      const changeToMake = changeOf(request.body as Record<string, unknown>);
      if (!(await triage.get(tenant, id))) throw alertNotFound(id);
      const done = await recordAndApply(request, [id], changeToMake, undefined);
      const alert = await triage.get(tenant, id);
      return { ...done, ...(alert ? { alert: await shown(tenant, alert) } : {}) };
    },
  );

  app.post(
    '/v1/alerts/:id/notes',
    {
      onRequest: change,
      schema: {
        description: 'Adds a note to an alert (scope triage or admin; recorded).',
        tags,
        security,
        params: idParams,
        body: noteBody,
        response: { 201: changedAnswer },
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { id } = request.params as { id: string };
      if (!(await triage.get(tenant, id))) throw alertNotFound(id);
      const done = await recordAndApply(
        request,
        [id],
        { note: (request.body as { text: string }).text },
        undefined,
      );
      const alert = await triage.get(tenant, id);
      return reply
        .status(201)
        .send({ ...done, ...(alert ? { alert: await shown(tenant, alert) } : {}) });
    },
  );

  app.post(
    '/v1/alerts/bulk',
    {
      onRequest: change,
      schema: {
        description: `One triage change to many alerts: listed by id, or every alert of a rule and/or an entity value (optionally only in some states or severities); at most ${MAX_BULK}. Scope triage or admin; one audit event records it.`,
        tags,
        security,
        body: bulkBody,
        response: { 200: changedAnswer },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const body = request.body as {
        ids?: string[];
        rule?: string;
        entity?: string;
        state?: string[];
        severity?: string[];
        change: Record<string, unknown>;
      };
      const changeToMake = changeOf(body.change);
      const bySelection = body.rule !== undefined || body.entity !== undefined;
      if ((body.ids !== undefined) === bySelection)
        throw new InvalidQueryError('choose the alerts either by ids or by rule/entity', [
          { path: '/ids', message: 'give ids, or rule and/or entity, not both and not neither' },
        ]);
      if (!bySelection && (body.state !== undefined || body.severity !== undefined))
        throw new InvalidQueryError('state and severity select alerts with rule or entity', [
          {
            path: body.state !== undefined ? '/state' : '/severity',
            message: 'needs rule or entity',
          },
        ]);
      let ids: string[];
      let selection: JsonObject | undefined;
      if (body.ids) {
        const wanted = [...new Set(body.ids)];
        const found = await triage.existing(tenant, wanted);
        const missing = wanted.findIndex((id) => !found.has(id));
        // Other tenants' alerts answer as unknown ones: nothing says they exist.
        if (missing >= 0)
          throw new QueryError(
            QueryErrorCodes.ALERT_NOT_FOUND,
            `no alert ${wanted[missing]} in this tenant; nothing was changed`,
            {
              status: 404,
              details: [
                {
                  path: `/ids/${body.ids.indexOf(wanted[missing] as string)}`,
                  message: 'no such alert',
                },
              ],
            },
          );
        ids = wanted.sort();
      } else {
        const states = statesParam(body.state, '/state');
        const entity = body.entity ? await entityFilter(tenant, body.entity) : undefined;
        ids = await triage.ids(tenant, {
          ...(body.rule ? { rules: [body.rule] } : {}),
          ...(entity !== undefined ? { entity } : {}),
          ...(states ? { states } : {}),
          ...(body.severity ? { severities: body.severity } : {}),
        });
        if (ids.length > MAX_BULK)
          throw new InvalidQueryError(`more than ${MAX_BULK} alerts match; narrow the selection`, [
            { path: '/rule', message: `selects more than ${MAX_BULK} alerts` },
          ]);
        selection = {
          ...(body.rule ? { rule: body.rule } : {}),
          ...(body.entity ? { entity: body.entity } : {}),
          ...(body.state ? { state: body.state } : {}),
          ...(body.severity ? { severity: body.severity } : {}),
        };
      }
      if (ids.length === 0) {
        await triage.validate(changeToMake);
        return { changed: 0, event: '' };
      }
      return recordAndApply(request, ids, changeToMake, selection);
    },
  );
}
