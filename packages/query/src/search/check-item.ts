import { createHash } from 'node:crypto';
import {
  canonicalValue,
  commitmentOfSaltText,
  parsePointer,
  type ErrorDetail,
} from '@vigil/protocol';
import type { SearchItem } from './item.js';

/**
 * What a client checks of a search item fetched with `include=record,disclosures`
 * (PROTOCOL.md §20.4), with nothing but the item: the hash is the SHA-256 of the record bytes,
 * each disclosure opens the commitment at its path of the record, each field the item calls
 * disclosed has its disclosure, and (without corrections) the event is the record with those
 * values in place: every member in the clear as in the record, each disclosed value shown.
 * Returns every problem found, each with the member of the item it concerns; none: verified.
 * It does not say the event is in the log: an inclusion proof (§15) says that.
 */
export function checkItem(item: SearchItem): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (item.record === undefined) {
    return [{ path: '/record', message: 'is missing: search with include=record,disclosures' }];
  }
  const digest = createHash('sha256').update(item.record, 'utf8').digest('hex');
  if (digest !== item.hash)
    problems.push({ path: '/hash', message: 'is not the SHA-256 of the record bytes' });
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(item.record) as Record<string, unknown>;
  } catch {
    return [...problems, { path: '/record', message: 'is not JSON' }];
  }
  const listed = new Set(
    Array.isArray(record['personal']) ? (record['personal'] as unknown[]) : [],
  );
  const disclosures = item.disclosures ?? {};
  for (const [path, state] of Object.entries(item.personal)) {
    if (!listed.has(path))
      problems.push({
        path: pointer('personal', path),
        message: "is not in the record's personal list",
      });
    if (
      state === 'disclosed' &&
      item.disclosures !== undefined &&
      !Object.hasOwn(disclosures, path)
    )
      problems.push({
        path: pointer('disclosures', path),
        message: 'is missing for a disclosed field',
      });
  }
  for (const [path, disclosure] of Object.entries(disclosures)) {
    const where = pointer('disclosures', path);
    const tokens = parsePointer(path);
    if (!listed.has(path) || !tokens) {
      problems.push({ path: where, message: "is not a path of the record's personal list" });
      continue;
    }
    const committed = valueAt(record, tokens);
    const opened = commitmentOfSaltText(path, canonicalValue(disclosure.value), disclosure.salt);
    if (opened === undefined)
      problems.push({ path: `${where}/salt`, message: 'is not a valid salt' });
    else if (opened !== committed)
      problems.push({ path: where, message: 'does not open the commitment in the record' });
    const shown = valueAt(item.event, tokens);
    if (
      item.server.correctedBy === undefined &&
      (shown === undefined || canonicalValue(shown) !== canonicalValue(disclosure.value))
    )
      problems.push({ path: `/event${path}`, message: 'is not the disclosed value' });
  }
  // The members in the clear are the record's: the event is the record with the committed
  // fields opened and its personal list left out (without corrections, which change it).
  if (item.server.correctedBy === undefined) {
    const clear = (root: object): string => {
      const copy = structuredClone(root) as Record<string, unknown>;
      delete copy['personal'];
      for (const path of listed) {
        const tokens = typeof path === 'string' ? parsePointer(path) : undefined;
        const parent = tokens ? valueAt(copy, tokens.slice(0, -1)) : undefined;
        const leaf = tokens?.[tokens.length - 1];
        if (leaf !== undefined && isObject(parent) && Object.hasOwn(parent, leaf))
          parent[leaf] = null;
      }
      return canonicalValue(copy);
    };
    if (clear(record) !== clear(item.event))
      problems.push({ path: '/event', message: "is not the record's content in the clear" });
  }
  return problems;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `/<member>` followed by `path` escaped as one token (RFC 6901). */
function pointer(member: string, path: string): string {
  return `/${member}/${path.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function valueAt(root: unknown, tokens: readonly string[]): unknown {
  let node = root;
  for (const token of tokens) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = Object.hasOwn(node, token) ? (node as Record<string, unknown>)[token] : undefined;
  }
  return node;
}
