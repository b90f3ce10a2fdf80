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
 * most `lingerMs`; when none is preparing, the group is inserted at once. Every caller of a
 * group gets that insert's outcome, so on a failure none of them commits its log offsets.
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
    const rows = group.length === 1 ? (group[0] as Waiter<Row>).rows : group.flatMap((w) => w.rows);
    const done = rows.length === 0 ? Promise.resolve() : this.insert(rows);
    done.then(
      () => {
        for (const w of group) w.resolve();
      },
      (error: unknown) => {
        for (const w of group) w.reject(error);
      },
    );
  }
}

interface Waiter<Row> {
  readonly rows: readonly Row[];
  resolve(): void;
  reject(error: unknown): void;
}
