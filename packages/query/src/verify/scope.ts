import { parseTime } from '@vigil/protocol';
import { toChTime } from '../store/rows.js';
import { InvalidQueryError } from '../errors.js';

/**
 * What part of a tenant's log a verification checks event by event: a range of event times
 * (`from` inclusive, `to` exclusive, as search reads them) and/or one stream. Trees are always
 * recomputed whole, since a root covers every leaf before it; the scope decides which leaves'
 * events are accounted for and which events and links are checked.
 */
export interface ScopeFilter {
  readonly from?: string;
  readonly to?: string;
  readonly stream?: string;
}

export class Scope {
  readonly params: Record<string, string>;
  private readonly parts: readonly ('from' | 'to' | 'stream')[];

  constructor(readonly filter: ScopeFilter = {}) {
    const details: { path: string; message: string }[] = [];
    const params: Record<string, string> = {};
    const parts: ('from' | 'to' | 'stream')[] = [];
    for (const k of ['from', 'to'] as const) {
      const v = filter[k];
      if (v === undefined) continue;
      if (parseTime(v) === undefined)
        details.push({ path: `/${k}`, message: 'must be a time such as 2026-11-23T00:00:00.000Z' });
      else {
        params[`scope_${k}`] = toChTime(v);
        parts.push(k);
      }
    }
    if (filter.stream !== undefined) {
      if (filter.stream === '') details.push({ path: '/stream', message: 'must not be empty' });
      params['scope_stream'] = filter.stream;
      parts.push('stream');
    }
    if (details.length > 0) throw new InvalidQueryError('invalid verification scope', details);
    this.params = params;
    this.parts = parts;
  }

  get whole(): boolean {
    return this.parts.length === 0;
  }

  /** The scope as an SQL condition over the given time and stream columns ('1' when whole). */
  sql(time: string, stream: string): string {
    const out: string[] = [];
    if (this.parts.includes('from')) out.push(`${time} >= {scope_from:DateTime64(3)}`);
    if (this.parts.includes('to')) out.push(`${time} < {scope_to:DateTime64(3)}`);
    if (this.parts.includes('stream')) out.push(`${stream} = {scope_stream:String}`);
    return out.length === 0 ? '1' : `(${out.join(' AND ')})`;
  }
}
