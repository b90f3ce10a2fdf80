/**
 * Coalesces the `events` inserts of batches the sink processes at the same time into one
 * INSERT. Both logs hand a sink's partitions over concurrently (the file log reads each
 * partition in its own loop, kafkajs runs `eachBatch` for several partitions at once), so
 * without this every partition pays its own insert. A store insert has a fixed cost of tens of
 * milliseconds (chDB, measured: ≈ 45 ms for one row into `events`, ≈ 85 ms for 1 000), and
 * ClickHouse wants few large inserts rather than many small ones ("too many parts"); no client
 * library does this grouping across independent callers, hence this class.
 *
 * A batch waits only for batches already being processed, never for data not yet fetched: a
 * caller that reaches its insert while others are still preparing theirs waits for them, at
 * most `lingerMs`; when none is preparing, the group is inserted at once. When the group's
 * insert fails, each batch is inserted again on its own and gets its own outcome, so a batch
 * whose rows the store refuses fails alone and the others commit their log offsets.
 */
export class InsertGroup<Row> {
  private preparing = 0;
  private waiting: Waiter<Row>[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly insert: (rows: readonly Row[]) => Promise<void>,
    private readonly lingerMs = 50,
  ) {}

  /** A batch started: the next group waits for its rows (or for `abandon()`). */
  begin(): void {
    this.preparing++;
  }

  /** A batch that called begin() will not submit (it failed before its insert). */
  abandon(): void {
    this.preparing = Math.max(0, this.preparing - 1);
    this.schedule();
  }

  /** The rows of a batch that called begin(); resolves once they are inserted. */
  submit(rows: readonly Row[]): Promise<void> {
    this.preparing = Math.max(0, this.preparing - 1);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.waiting.length === 0) return;
    if (this.preparing === 0) {
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const group = this.waiting;
    this.waiting = [];
    if (group.length === 0) return;
    if (group.length === 1) {
      this.settle(group[0] as Waiter<Row>);
      return;
    }
    this.insertRows(group.flatMap((w) => w.rows)).then(
      () => {
        for (const w of group) w.resolve();
      },
      // The rows of one batch may be what the store refuses (a value it cannot take): each
      // batch is then inserted on its own, so that only the batch that holds them fails and
      // the others' partitions go on. ClickHouse inserts are atomic per INSERT, so nothing of
      // the failed group was written twice.
      () => {
        for (const w of group) this.settle(w);
      },
    );
  }

  private settle(waiter: Waiter<Row>): void {
    this.insertRows(waiter.rows).then(
      () => waiter.resolve(),
      (error: unknown) => waiter.reject(error),
    );
  }

  private insertRows(rows: readonly Row[]): Promise<void> {
    return rows.length === 0 ? Promise.resolve() : this.insert(rows);
  }
}

interface Waiter<Row> {
  readonly rows: readonly Row[];
  resolve(): void;
  reject(error: unknown): void;
}
