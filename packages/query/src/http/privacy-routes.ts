import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  encodeErasureReceipt,
  erasureReceiptSigningInput,
  formatTime,
  normalEmail,
  signedErasureReceipt,
  type ErasureReceiptStatement,
  type JsonValue,
  type SignedErasureReceipt,
  type SubjectRef,
} from '@vigil/protocol';
import type { KeyRegistry } from '../auth/registry.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { incompleteOnError } from './streaming.js';
import { ProofService } from '../proof/proofs.js';
import { correctionEvent } from '../privacy/corrections.js';
import { eraseFromBaselines } from '../detect/baselines.js';
import { Eraser, type ErasurePlan } from '../privacy/erasure.js';
import { AlertPrivacy, subjectNeedles } from '../alerts/privacy.js';
import { AccessProjection } from '../access/projection.js';
import { SubjectExporter, type DocumentSigner, type ExportFormat } from '../privacy/export.js';
import { PSEUDONYM_FIELDS, type PseudonymField } from '../privacy/pseudonyms.js';
import { newRestrictionId, Restrictions } from '../privacy/restrictions.js';
import type { PrivacyService } from '../privacy/service.js';
import type { Store } from '../store/store.js';
import {
  recordThenApply as recordChangeThenApply,
  type AdminChange,
  type ChangeRecorder,
} from '../system/changes.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { fileAnswer, noQuery, openAnswer, tenantMember } from './schemas.js';

/**
 * The data-subject rights and privacy settings of a tenant (scope `admin`): export (GDPR Art. 15,
 * 20), erasure (17), rectification (16), restriction (18), and pseudonymisation (Art. 25, 32).
 * Every one of them is recorded as an audit event of the tenant before it takes effect, naming
 * the person only by keyed digests (PROTOCOL.md §17.2); one that cannot be recorded does not
 * happen.
 */

/** What erasing from the log did (the embedded log is rewritten; Kafka keeps until its retention). */
export interface LogErasure {
  readonly kind: 'file' | 'kafka';
  /** Records rewritten without the person's values. */
  readonly records: number;
}

export interface PrivacyRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly privacy: PrivacyService;
  readonly recorder: ChangeRecorder;
  /** Signs bundles and erasure receipts; without it both are refused (503). */
  readonly signer?: DocumentSigner;
  /** Removes the person's values from the log (the process that holds the log provides it). */
  readonly eraseLog?: (
    tenant: string,
    subject: SubjectRef,
    erasedAt: number,
    /** The ids of the events erased in the store (their corrections are erased in the log too). */
    eventIds: readonly string[],
  ) => Promise<LogErasure>;
  /** Signs a checkpoint of the tenant now (a process with a sink), so a bundle can prove new events. */
  readonly checkpointNow?: (tenant: string) => Promise<void>;
  readonly onAuthFailure?: AuthObserver;
}

const subjectProperties = {
  subject: {
    type: 'string',
    minLength: 1,
    maxLength: 256,
    description:
      "the person's id, as the producer's system knows it (matched as actor, target, access subject or grantor)",
  },
  emails: {
    type: 'array',
    maxItems: 20,
    items: { type: 'string', minLength: 3, maxLength: 320 },
    description: 'e-mail addresses of the person, matched without case as well',
  },
} as const;

const reason = { type: 'string', minLength: 1, maxLength: 1000 } as const;

function subjectOf(body: { subject: string; emails?: string[] }): SubjectRef {
  const emails = [...new Set((body.emails ?? []).map(normalEmail))].sort();
  return { id: body.subject, ...(emails.length > 0 ? { emails } : {}) };
}

function who(request: FastifyRequest): { tenant: string; keyId: string } {
  return { tenant: tenantOf(request), keyId: request.vigilKey?.keyId ?? '' };
}

function signerUnavailable(): QueryError {
  return new QueryError(
    QueryErrorCodes.SIGNER_UNAVAILABLE,
    'this process has no signing key for erasure receipts (checkpoint.signer); nothing was erased',
    { status: 503 },
  );
}

export function registerPrivacyRoutes(app: FastifyInstance, options: PrivacyRoutesOptions): void {
  const { store, privacy, recorder } = options;
  const admin = requireScope(options.registry, 'admin', options.onAuthFailure);
  const proofs = new ProofService(store);
  const exporter = new SubjectExporter(store, privacy, proofs);
  const eraser = new Eraser(store, privacy);
  const accessProjection = new AccessProjection(store);
  const restrictions = new Restrictions(store, privacy);
  const alertPrivacy = new AlertPrivacy(store);
  const tags = ['privacy'];

  /**
   * The person's values that alerts may hold: their ids and addresses, and every value the
   * erasure removes from their events (read before it does).
   */
  const alertNeedles = async (plan: ErasurePlan): Promise<Set<string>> => {
    const values: string[] = [];
    for (const e of plan.events) {
      const { disclosures } = await privacy.plainDisclosures(e.row);
      for (const path of e.paths) {
        const v = disclosures[path]?.value;
        if (typeof v === 'string' && v !== '') values.push(v);
      }
    }
    return subjectNeedles(plan.forms, values);
  };
  const security = [{ bearer: [] }];

  /** Records, then applies; a failure after the record gets a second event with outcome error. */
  const recordThenApply = <T>(
    tenant: string,
    keyId: string,
    change: AdminChange,
    apply: () => Promise<T>,
  ): Promise<T> => recordChangeThenApply((c) => recorder.record(tenant, keyId, c), change, apply);

  app.post(
    '/v1/admin/subjects/export',
    {
      onRequest: admin,
      schema: {
        response: {
          200: fileAnswer(
            'the export file, in the format asked for; X-Vigil-Events has the number of events',
            ['text/csv', 'application/json', 'application/x-ndjson'],
          ),
        },
        description:
          "Everything stored about one person (GDPR Art. 15, 20): the events they are a party of and the corrections of them, with their own values disclosed and other people's left as commitments. format json (default; also lists the alerts that name the person or were raised from their events, with the person's values only), csv (UTF-8 with BOM, formula-safe, for Excel) or bundle (signed, verifiable offline: PROTOCOL.md §16). Streams; recorded as subject.exported.",
        tags,
        security,
        body: {
          type: 'object',
          required: ['subject'],
          properties: {
            ...subjectProperties,
            format: { type: 'string', enum: ['json', 'csv', 'bundle'] },
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { tenant, keyId } = who(request);
      const body = request.body as { subject: string; emails?: string[]; format?: ExportFormat };
      const subject = subjectOf(body);
      const format = body.format ?? 'json';
      const prepared = await exporter.prepare(tenant, subject, format, {
        ...(options.signer ? { signer: options.signer } : {}),
        ...(options.checkpointNow ? { checkpointNow: options.checkpointNow } : {}),
      });
      await recorder.record(tenant, keyId, {
        action: 'subject.exported',
        category: 'data_access',
        target: { type: 'data_subject', id: privacy.digests(tenant, { id: subject.id })[0] ?? '' },
        metadata: {
          subject: privacy.digests(tenant, subject),
          format,
          events: prepared.events,
        },
      });
      return reply
        .header('content-type', prepared.contentType)
        .header('content-disposition', `attachment; filename="${prepared.fileName}"`)
        .header('x-vigil-events', String(prepared.events))
        .send(Readable.from(incompleteOnError(prepared.stream(), request.log)));
    },
  );

  app.post(
    '/v1/admin/subjects/digest',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer(
            'the subject digests of this tenant: how the person is named in the store',
            {
              tenant: tenantMember,
              digests: { type: 'array', description: 'one digest per identifier (id, each email)' },
            },
          ),
        },
        description:
          "The keyed digests of a person's id and addresses, as erasure receipts and restrictions name them (PROTOCOL.md §17.2): to find the receipts of a person.",
        tags,
        security,
        body: {
          type: 'object',
          required: ['subject'],
          properties: subjectProperties,
          additionalProperties: false,
        },
      },
    },
    (request) => {
      const { tenant } = who(request);
      const subject = subjectOf(request.body as { subject: string; emails?: string[] });
      return { tenant, digests: privacy.digests(tenant, subject) };
    },
  );

  app.post(
    '/v1/admin/subjects/erase',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('what was (or, with dryRun, would be) erased', {
            tenant: tenantMember,
            dryRun: 'true on a dry run: nothing was erased',
            erasure: 'the erasure id',
            subject: 'the subject digests',
            events: 'events erased',
            disclosures: 'disclosures erased',
            holds: 'legal holds that cover the erasure',
            heldEvents: 'events under a hold',
            counts: 'counts of the signed receipt',
            detection: 'baselineRows: rows of detection baselines deleted (every generation)',
            accessRows:
              'rows of the access projection rewritten: the person shows as erased in access reviews (not in the signed counts, whose members PROTOCOL.md closes)',
            receipt: 'the signed erasure receipt (PROTOCOL.md)',
            purged: 'with purge: what is left of old row versions',
            physicalDeletion: 'without purge: when the bytes leave the disk',
          }),
        },
        description:
          'Erases a person (GDPR Art. 17): deletes the disclosures (value and salt) of their fields in every event they are a party of, the data derived from them, and their values in the embedded log, keeping the hashed records, so every hash, chain link and proof still verifies. Alerts about the person are deleted, others that list their values rewritten without them (counts.alerts). A legal hold on the person, the tenant or the events blocks it (409) unless overrideHold is true with holdOverrideReason. Returns a signed receipt that names the person only by keyed digests. purge: true also merges the table so the superseded rows leave the disk now.',
        tags,
        security,
        body: {
          type: 'object',
          required: ['subject', 'reason'],
          properties: {
            ...subjectProperties,
            reason: { ...reason, description: 'why; kept in the receipt: do not name the person' },
            overrideHold: { type: 'boolean' },
            holdOverrideReason: reason,
            purge: { type: 'boolean' },
            dryRun: { type: 'boolean', description: 'report what would be erased; change nothing' },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const body = request.body as {
        subject: string;
        emails?: string[];
        reason: string;
        overrideHold?: boolean;
        holdOverrideReason?: string;
        purge?: boolean;
        dryRun?: boolean;
      };
      const subject = subjectOf(body);
      if (body.overrideHold === true && !body.holdOverrideReason)
        throw new QueryError(
          QueryErrorCodes.INVALID_QUERY,
          'overriding a legal hold needs holdOverrideReason',
          {
            status: 400,
            details: [{ path: '/holdOverrideReason', message: 'is required with overrideHold' }],
          },
        );
      const signer = options.signer;
      if (!signer && body.dryRun !== true) throw signerUnavailable();
      const plan = await eraser.plan(tenant, subject);
      const held = plan.holds.length > 0 || plan.heldEvents > 0;
      const alertPlan = await alertPrivacy.planErasure(
        tenant,
        await alertNeedles(plan),
        plan.events.map((e) => e.row.id),
      );
      const summary = {
        erasure: plan.erasureId,
        subject: plan.digests,
        events: plan.events.length,
        disclosures: plan.events.reduce((n, e) => n + e.paths.length, 0),
        alerts: alertPlan.deleted.length + alertPlan.rewritten.length,
        holds: plan.holds.map((h) => h.id),
        heldEvents: plan.heldEvents,
      };
      if (body.dryRun === true) return { tenant, dryRun: true, ...summary };
      if (held && body.overrideHold !== true)
        throw new QueryError(
          QueryErrorCodes.ERASURE_HELD,
          `legal holds cover this erasure (${plan.holds.map((h) => h.id).join(', ') || `${plan.heldEvents} held events`}); nothing was erased. Release them, or set overrideHold with holdOverrideReason`,
          {
            status: 409,
            details: plan.holds.map((h) => ({
              path: '/overrideHold',
              message: `${h.id} (${h.subject === null ? 'whole tenant' : 'a subject'}) placed ${new Date(h.placedAt).toISOString()}: ${h.reason}`,
            })),
          },
        );
      const override =
        held && body.overrideHold === true
          ? { holds: plan.holds.map((h) => h.id).sort(), reason: body.holdOverrideReason ?? '' }
          : undefined;
      const change: AdminChange = {
        action: 'subject.erased',
        target: { type: 'erasure', id: plan.erasureId },
        metadata: {
          erasure: plan.erasureId,
          subject: [...plan.digests],
          events: plan.events.length,
          reason: body.reason,
          ...(override ? { holdOverride: { holds: override.holds, reason: override.reason } } : {}),
        },
        // Free text an admin typed may name the person after all: committed, so erasable.
        personal: ['/metadata/reason', ...(override ? ['/metadata/holdOverride/reason'] : [])],
      };
      return recordThenApply(tenant, keyId, change, async () => {
        const receipt = await erase(plan, body.reason, override, signer as DocumentSigner);
        const purged =
          body.purge === true ? await eraser.purge(tenant, receipt.statement.events) : undefined;
        return {
          tenant,
          ...summary,
          events: receipt.statement.counts.events,
          counts: receipt.statement.counts,
          detection: receipt.detection,
          accessRows: receipt.accessRows,
          receipt: receipt.signed,
          ...(purged
            ? { purged: { oldVersionsLeft: purged.oldVersions } }
            : {
                physicalDeletion:
                  'the superseded rows stay on disk until ClickHouse merges their parts; run with purge, or see README "Privacy"',
              }),
        };
      });
    },
  );

  async function erase(
    plan: ErasurePlan,
    why: string,
    override: { holds: string[]; reason: string } | undefined,
    signer: DocumentSigner,
  ): Promise<{
    statement: ErasureReceiptStatement;
    signed: SignedErasureReceipt;
    detection: { baselineRows: number };
    accessRows: number;
  }> {
    const at = Date.now();
    await eraser.markStarted(plan, at);
    // Read before the events lose them: the values the person's alerts may list.
    const needles = await alertNeedles(plan);
    const applied = await eraser.apply(plan);
    const alerts = await alertPrivacy.applyErasure(
      await alertPrivacy.planErasure(
        plan.tenant,
        needles,
        plan.events.map((e) => e.row.id),
      ),
      needles,
    );
    // The access projection names the person by the same digests (access/facts.ts).
    const accessRows = await accessProjection.erase(plan.tenant, plan.digests);
    const log = options.eraseLog
      ? await options.eraseLog(
          plan.tenant,
          plan.subject,
          at,
          plan.events.map((e) => e.row.id),
        )
      : undefined;
    const rejected = await eraser.eraseRejected(plan.tenant, plan.subject);
    // Detection baselines name the person by id (plain or pseudonym): every generation loses
    // their rows, counted in the receipt (counts.baselines) and the answer.
    const baselineRows = await eraseFromBaselines(store, plan.tenant, plan.forms.ids);
    const statement: ErasureReceiptStatement = {
      v: 1,
      type: 'vigil.erasure-receipt',
      erasure: plan.erasureId,
      tenant: plan.tenant,
      subject: [...plan.digests],
      time: formatTime(at),
      keyId: signer.keyId,
      reason: why,
      ...(override ? { holdOverride: override } : {}),
      events: applied.events,
      counts: {
        events: applied.events.length,
        disclosures: applied.disclosures,
        derivedColumns: applied.derivedColumns,
        logRecords: log?.records ?? 0,
        rejectedRecords: rejected,
        alerts: alerts.deleted + alerts.rewritten,
        baselines: baselineRows,
      },
    };
    const text = encodeErasureReceipt(statement);
    const signed = signedErasureReceipt(text, await signer.sign(erasureReceiptSigningInput(text)));
    await eraser.finish(plan, at, { id: signed.id, text: JSON.stringify(signed) });
    return { statement, signed, detection: { baselineRows }, accessRows };
  }

  app.get(
    '/v1/admin/erasures',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the erasures of this tenant, with their signed receipts', {
            tenant: tenantMember,
            erasures: { type: 'array', description: 'erasure, erasedAt, receipt' },
          }),
        },
        description: "The tenant's erasure receipts, newest first (PROTOCOL.md §17).",
        tags,
        security,
        querystring: noQuery,
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const list = await eraser.receipts(tenant);
      return {
        tenant,
        erasures: list.map((r) => ({
          erasure: r.erasure,
          erasedAt: new Date(r.at).toISOString(),
          receipt: JSON.parse(r.receipt) as SignedErasureReceipt,
        })),
      };
    },
  );

  app.get(
    '/v1/admin/erasures/:id',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the signed erasure receipt (PROTOCOL.md)', {
            statement: 'what was erased',
            signed: 'the signed document',
          }),
        },
        description: 'One signed erasure receipt.',
        tags,
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^era_[0-9a-f]{16}$' } },
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const { id } = request.params as { id: string };
      const found = (await eraser.receipts(tenant)).find((r) => r.erasure === id);
      if (!found)
        throw new QueryError(QueryErrorCodes.RECEIPT_NOT_FOUND, `no erasure ${id} in this tenant`, {
          status: 404,
        });
      return JSON.parse(found.receipt) as SignedErasureReceipt;
    },
  );

  app.post(
    '/v1/admin/subjects/restrict',
    {
      onRequest: admin,
      schema: {
        response: {
          201: openAnswer('the restriction placed (GDPR Art. 18)', {
            tenant: tenantMember,
            detection: 'baselineRows: rows of detection baselines deleted (every generation)',
          }),
        },
        description:
          "Restricts processing of a person's data (GDPR Art. 18): their events are kept but hidden from search, analytics and detection until the restriction is lifted; an admin sees them with includeRestricted=true (recorded).",
        tags,
        security,
        body: {
          type: 'object',
          required: ['subject', 'reason'],
          properties: { ...subjectProperties, reason },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { tenant, keyId } = who(request);
      const body = request.body as { subject: string; emails?: string[]; reason: string };
      const subject = subjectOf(body);
      const id = newRestrictionId();
      const placed = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'subject.restricted',
          target: { type: 'restriction', id },
          metadata: {
            restriction: id,
            subject: privacy.digests(tenant, subject),
            reason: body.reason,
          },
          personal: ['/metadata/reason'],
        },
        () => restrictions.place(tenant, subject, body.reason, keyId, id),
      );
      // Hidden from detection too: the person leaves every generation of the baselines now
      // (refreshes leave restricted events out; after the lift they learn them again).
      const forms = await privacy.subjectForms(tenant, subject);
      const baselineRows = await eraseFromBaselines(store, tenant, forms.ids);
      return reply.status(201).send({ tenant, ...placed, detection: { baselineRows } });
    },
  );

  app.get(
    '/v1/admin/restrictions',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the restrictions of this tenant', {
            tenant: tenantMember,
            restrictions: { type: 'array', description: 'restrictions, active ones or all' },
          }),
        },
        description: "The tenant's active restrictions (with ?all=true, lifted ones too).",
        tags,
        security,
        querystring: {
          type: 'object',
          properties: { all: { type: 'string', enum: ['true', 'false'] } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const all = (request.query as { all?: string }).all === 'true';
      return { tenant, restrictions: await restrictions.list(tenant, { all }) };
    },
  );

  app.post(
    '/v1/admin/restrictions/:id/lift',
    {
      onRequest: admin,
      schema: {
        response: { 200: openAnswer('the restriction, lifted', { tenant: tenantMember }) },
        description: 'Lifts a restriction: the events no other restriction covers are shown again.',
        tags,
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^rst_[0-9a-f]{16}$' } },
        },
        body: {
          type: 'object',
          required: ['reason'],
          properties: { reason },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const { id } = request.params as { id: string };
      const why = (request.body as { reason: string }).reason;
      const existing = await restrictions.liftable(tenant, id);
      const lifted = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'subject.restriction_lifted',
          target: { type: 'restriction', id },
          metadata: { restriction: id, subject: [...existing.digests], reason: why },
          personal: ['/metadata/reason'],
        },
        () => restrictions.lift(tenant, id, keyId, why),
      );
      return { tenant, ...lifted };
    },
  );

  app.post(
    '/v1/admin/events/:id/corrections',
    {
      onRequest: admin,
      schema: {
        response: {
          201: openAnswer('the correction, recorded as an event of its own', {
            tenant: tenantMember,
            correction: 'the correction event',
            corrects: 'what it corrects',
          }),
        },
        description:
          'Records a correction of an event (GDPR Art. 16; PROTOCOL.md §18): a new event on the admin stream naming the event and the corrected values. Searches show the corrected view; ?original=true shows the event as recorded. Values at personal paths are committed.',
        tags,
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$' } },
        },
        body: {
          type: 'object',
          required: ['fields', 'reason'],
          properties: {
            hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            fields: {
              type: 'object',
              minProperties: 1,
              maxProperties: 64,
              description: 'new values by JSON pointer into the event: {"/actor/email": "…"}',
            },
            reason,
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { tenant, keyId } = who(request);
      const { id } = request.params as { id: string };
      const body = request.body as {
        hash?: string;
        fields: Record<string, JsonValue>;
        reason: string;
      };
      const event = await correctionEvent(store, tenant, {
        event: id,
        ...(body.hash ? { hash: body.hash } : {}),
        fields: body.fields,
        reason: body.reason,
      });
      const recorded = await recorder.record(tenant, keyId, event);
      return reply.status(201).send({ tenant, correction: recorded, corrects: event.corrects });
    },
  );

  app.get(
    '/v1/admin/privacy',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('pseudonymised fields, tenant keys and their history', {
            tenant: tenantMember,
            pseudonymise: { type: 'array', description: 'fields stored as pseudonyms' },
            keys: { type: 'array', description: 'keyId, createdAt, destroyedAt' },
            history: { type: 'array', description: 'changes of the settings' },
          }),
        },
        description:
          "The tenant's pseudonymisation: the kinds of fields stored as pseudonyms, its keys (current and destroyed) and every change.",
        tags,
        security,
        querystring: noQuery,
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const [fields, keys, history] = await Promise.all([
        privacy.fields([tenant]),
        privacy.keys.list(tenant),
        privacy.history(tenant),
      ]);
      return {
        tenant,
        pseudonymise: fields.get(tenant) ?? [],
        keys: keys.map((k) => ({
          keyId: k.keyId,
          createdAt: new Date(k.createdAt).toISOString(),
          destroyedAt: k.destroyedAt === null ? null : new Date(k.destroyedAt).toISOString(),
        })),
        history: history.map((h) => ({ ...h, changedAt: new Date(h.changedAt).toISOString() })),
      };
    },
  );

  app.put(
    '/v1/admin/privacy',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the settings now in force', {
            tenant: tenantMember,
            pseudonymise: { type: 'array', description: 'fields stored as pseudonyms' },
            keyId: 'the tenant key in use, or null',
          }),
        },
        description: `Chooses the kinds of personal fields stored as pseudonyms for new events (${PSEUDONYM_FIELDS.join(', ')}); [] turns pseudonymisation off. Events already stored keep the form they were stored in.`,
        tags,
        security,
        body: {
          type: 'object',
          required: ['pseudonymise'],
          properties: {
            pseudonymise: {
              type: 'array',
              uniqueItems: true,
              items: { type: 'string', enum: [...PSEUDONYM_FIELDS] },
            },
            reason: { type: 'string', maxLength: 1000 },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const body = request.body as { pseudonymise: PseudonymField[]; reason?: string };
      const result = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'privacy.pseudonymisation_changed',
          target: { type: 'tenant', id: tenant },
          metadata: { pseudonymise: [...body.pseudonymise].sort(), reason: body.reason ?? '' },
        },
        () => privacy.setFields(tenant, body.pseudonymise, keyId, body.reason ?? ''),
      );
      return { tenant, pseudonymise: result.fields, keyId: result.key?.keyId ?? null };
    },
  );

  app.post(
    '/v1/admin/privacy/destroy-key',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the tenant key, destroyed: its pseudonyms can no longer be resolved', {
            tenant: tenantMember,
          }),
        },
        description:
          "Destroys the tenant's pseudonym key: every event stored under it becomes anonymous (pseudonyms unlinkable to anyone, protected values unreadable) while records and proofs stay valid. Irreversible. New events get a new key while pseudonymisation stays on.",
        tags,
        security,
        body: {
          type: 'object',
          required: ['reason'],
          properties: { reason },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const why = (request.body as { reason: string }).reason;
      const current = await privacy.keys.current(tenant);
      const result = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'privacy.key_destroyed',
          target: { type: 'tenant_key', id: current?.keyId ?? 'none' },
          metadata: { reason: why },
        },
        () => privacy.destroyKey(tenant),
      );
      return { tenant, ...result };
    },
  );
}
