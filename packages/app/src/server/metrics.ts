import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngestObserver } from '@vigil/collector';
import type { SinkObserver } from '@vigil/collector';
import type { DetectorObserver, RekeyObserver } from '@vigil/collector';
import type { DeliveryObserver } from '@vigil/query';

/**
 * Prometheus metrics of one process (`GET /metrics`). One registry per process (not the global
 * one) so that tests can run several servers side by side.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly eventsAccepted: Counter;
  readonly eventsDuplicate: Counter;
  readonly eventsRejected: Counter<'reason'>;
  readonly requestsRefused: Counter<'status' | 'scope'>;
  readonly requestDuration: Histogram<'route' | 'status'>;
  readonly batchEvents: Histogram;
  readonly logAppendSeconds: Histogram;
  readonly sinkInsertSeconds: Histogram;
  readonly sinkRows: Counter;
  readonly sinkDuplicates: Counter;
  readonly chainIssues: Counter<'kind'>;
  readonly sinkRejectedRecords: Counter;
  readonly consumerLag: Gauge<'partition'>;
  readonly triageChanges: Counter<'state'>;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly webhookQueueDepth: Gauge;
  readonly webhookDeadLetters: Gauge;
  readonly detectorAsnRulesDisabled: Gauge;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vigil_process_' });
    const r = [this.registry];
    this.eventsAccepted = new Counter({
      name: 'vigil_events_accepted_total',
      help: 'Events accepted and durably appended to the log.',
      registers: r,
    });
    this.eventsDuplicate = new Counter({
      name: 'vigil_events_duplicate_total',
      help: 'Events answered as duplicates (already accepted).',
      registers: r,
    });
    this.eventsRejected = new Counter({
      name: 'vigil_events_rejected_total',
      help: 'Events in refused batches, by error code.',
      labelNames: ['reason'],
      registers: r,
    });
    this.requestsRefused = new Counter({
      name: 'vigil_requests_refused_total',
      help: 'Requests refused by authentication, rate limiting or admission control (401, 403, 429, 503).',
      labelNames: ['status', 'scope'],
      registers: r,
    });
    this.requestDuration = new Histogram({
      name: 'vigil_http_request_duration_seconds',
      help: 'HTTP request latency by route and status.',
      labelNames: ['route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    });
    this.batchEvents = new Histogram({
      name: 'vigil_ingest_batch_events',
      help: 'Events per ingest request.',
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000],
      registers: r,
    });
    this.logAppendSeconds = new Histogram({
      name: 'vigil_log_append_seconds',
      help: 'Time to durably append a batch to the log.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: r,
    });
    this.sinkInsertSeconds = new Histogram({
      name: 'vigil_sink_insert_seconds',
      help: 'Time of one store insert by the sink.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.sinkRows = new Counter({
      name: 'vigil_sink_rows_total',
      help: 'Rows the sink inserted into the store.',
      registers: r,
    });
    this.sinkDuplicates = new Counter({
      name: 'vigil_sink_duplicates_total',
      help: 'Events the sink recognised as already stored.',
      registers: r,
    });
    this.chainIssues = new Counter({
      name: 'vigil_chain_issues_total',
      help: 'Chain gaps, forks, events after close and id conflicts recorded.',
      labelNames: ['kind'],
      registers: r,
    });
    this.sinkRejectedRecords = new Counter({
      name: 'vigil_sink_rejected_records_total',
      help: 'Log records the sink could not decode or that fail its checks (kept in rejected_records).',
      registers: r,
    });
    this.triageChanges = new Counter({
      name: 'vigil_alert_triage_changes_total',
      help: 'Alerts changed by triage, by the state set ("none" for an assignment or a note alone).',
      labelNames: ['state'],
      registers: r,
    });
    this.consumerLag = new Gauge({
      name: 'vigil_consumer_lag_records',
      help: 'Log records not yet stored by the sink, per partition.',
      labelNames: ['partition'],
      registers: r,
    });
    this.webhookDeliveries = new Counter({
      name: 'vigil_webhook_deliveries_total',
      help: 'Webhook delivery outcomes: delivered, retry (an attempt failed), dead (dead-lettered after the last attempt), cancelled (webhook deleted or disabled), overflow (dead-lettered at once: outbox full).',
      labelNames: ['outcome'],
      registers: r,
    });
    this.webhookQueueDepth = new Gauge({
      name: 'vigil_webhook_queue_depth',
      help: 'Webhook deliveries waiting in the outbox (all tenants), as the dispatcher last counted.',
      registers: r,
    });
    this.webhookDeadLetters = new Gauge({
      name: 'vigil_webhook_dead_letters',
      help: 'Webhook deliveries in the dead-letter list (all tenants), as the dispatcher last counted.',
      registers: r,
    });
    this.detectorAsnRulesDisabled = new Gauge({
      name: 'vigil_detector_asn_rules_disabled',
      help: 'Detection rules whose asn.* conditions cannot match because no ASN data is configured (geoip.asn=off, no geoip.asnDb); named in a warning at detector start.',
      registers: r,
    });
  }

  webhookObserver(): DeliveryObserver {
    return {
      outcome: (kind, count = 1) => this.webhookDeliveries.inc({ outcome: kind }, count),
      depth: (pending, dead) => {
        this.webhookQueueDepth.set(pending);
        this.webhookDeadLetters.set(dead);
      },
    };
  }

  /**
   * `vigil_alerts_open`: open alerts (in force: an expired accepted risk counts) by severity,
   * over all tenants. No tenant label: one series per tenant would grow with the tenants
   * (Prometheus' advice on label cardinality); per tenant, ask GET /v1/alerts. Read from the
   * store at most every 30 s, whatever the scrape interval.
   */
  watchOpenAlerts(source: { openBySeverity(): Promise<Map<string, number>> }): void {
    let last = 0;
    let cached = new Map<string, number>();
    new Gauge({
      name: 'vigil_alerts_open',
      help: 'Open alerts by severity, over all tenants (an accepted risk past its expiry counts as open).',
      labelNames: ['severity'],
      registers: [this.registry],
      async collect() {
        if (Date.now() - last >= 30_000) {
          try {
            cached = await source.openBySeverity();
            last = Date.now();
          } catch {
            // The store is down: keep the last values (readiness reports the store).
          }
        }
        this.reset();
        for (const [severity, n] of cached) this.set({ severity }, n);
      },
    });
  }

  /** `vigil_ingest_lag_records`: the lag the collector's admission control judges by. */
  watchIngestLag(read: () => number): void {
    new Gauge({
      name: 'vigil_ingest_lag_records',
      help: "Log records the sinks' consumer group has not committed, as the collector last read them (ingest.maxLagRecords bounds it).",
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  ingestObserver(): IngestObserver {
    return {
      accepted: (events, duplicates) => {
        this.eventsAccepted.inc(events);
        if (duplicates > 0) this.eventsDuplicate.inc(duplicates);
        this.batchEvents.observe(events + duplicates);
      },
      rejected: (reason, events) => this.eventsRejected.inc({ reason }, events),
      appendLatency: (seconds) => this.logAppendSeconds.observe(seconds),
    };
  }

  sinkObserver(): SinkObserver {
    return {
      inserted: (rows, seconds) => {
        this.sinkRows.inc(rows);
        this.sinkInsertSeconds.observe(seconds);
      },
      duplicate: (count) => this.sinkDuplicates.inc(count),
      chainIssue: (kind) => this.chainIssues.inc({ kind }),
      rejectedRecord: () => this.sinkRejectedRecords.inc(),
    };
  }

  /** Metrics of the detector (collector/src/detector/), registered when one runs. */
  detectorObserver(): DetectorObserver {
    const r = [this.registry];
    const events = new Counter({
      name: 'vigil_detect_events_total',
      help: 'Events the detector ran the rules on.',
      registers: r,
    });
    const skipped = new Counter({
      name: 'vigil_detect_skipped_records_total',
      help: 'Log records the detector could not read and skipped (the sink sets them aside in rejected_records).',
      registers: r,
    });
    const late = new Counter({
      name: 'vigil_detect_dropped_late_total',
      help: 'Events that arrived later than detect.latenessSeconds behind the watermark, not counted by any rule.',
      registers: r,
    });
    const alerts = new Counter({
      name: 'vigil_detect_alerts_total',
      help: 'Alerts raised (status new) and grown (status updated) by the detector.',
      labelNames: ['status'],
      registers: r,
    });
    const evictions = new Counter({
      name: 'vigil_detect_evictions_total',
      help: 'Entities, window entries and alert keys the engine evicted to stay within its memory bounds.',
      registers: r,
    });
    const lag = new Gauge({
      name: 'vigil_detect_watermark_lag_seconds',
      help: "Wall clock minus the detector's event-time watermark.",
      registers: r,
    });
    return {
      batch: (report) => {
        events.inc(report.events);
        if (report.skippedRecords > 0) skipped.inc(report.skippedRecords);
        if (report.droppedLate > 0) late.inc(report.droppedLate);
        if (report.alertsRaised > 0) alerts.inc({ status: 'new' }, report.alertsRaised);
        if (report.alertsUpdated > 0) alerts.inc({ status: 'updated' }, report.alertsUpdated);
        if (report.evictions > 0) evictions.inc(report.evictions);
      },
      watermarkLag: (seconds) => lag.set(seconds),
    };
  }

  /**
   * Metrics of the detector's re-key stage on Kafka (collector/src/detector/rekey/). With the
   * re-key, vigil_detect_events_total counts the engine stage's event messages: an event once
   * per group-by set that counts it.
   */
  rekeyObserver(): RekeyObserver {
    const r = [this.registry];
    const records = new Counter({
      name: 'vigil_detect_rekey_records_total',
      help: 'Log records the re-key stage read.',
      registers: r,
    });
    const events = new Counter({
      name: 'vigil_detect_rekey_events_total',
      help: 'Events the re-key stage read from the log records.',
      registers: r,
    });
    const produced = new Counter({
      name: 'vigil_detect_rekey_messages_total',
      help: 'Messages the re-key stage produced to the re-key topic (an event once per group-by set that counts it; none for events no rule counts).',
      registers: r,
    });
    const skipped = new Counter({
      name: 'vigil_detect_rekey_skipped_records_total',
      help: 'Log records the re-key stage could not read and skipped.',
      registers: r,
    });
    return {
      batch: (report) => {
        records.inc(report.records);
        events.inc(report.events);
        produced.inc(report.produced);
        if (report.skippedRecords > 0) skipped.inc(report.skippedRecords);
      },
    };
  }
}
