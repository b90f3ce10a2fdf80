import { BlockList, isIP } from 'node:net';
import { compileField, type DetectionEvent, type FieldGetter } from '../event.js';

/** A compiled test of one event, given the tenant's time zone. */
export type Matcher = (event: DetectionEvent, zone: string) => boolean;

/**
 * The actions a matcher can match at most, when it says (an `action` equality, combined through
 * and/or): the engine runs a rule only on events whose action can match it.
 */
const ACTIONS = new WeakMap<Matcher, ReadonlySet<string>>();

export function actionsOf(m: Matcher): ReadonlySet<string> | undefined {
  return ACTIONS.get(m);
}

function withActions(m: Matcher, actions: ReadonlySet<string> | undefined): Matcher {
  if (actions !== undefined) ACTIONS.set(m, actions);
  return m;
}

/** Both must hold: the actions both allow (or the one that is known). */
export function bothActions(
  a: ReadonlySet<string> | undefined,
  b: ReadonlySet<string> | undefined,
): ReadonlySet<string> | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return new Set([...a].filter((x) => b.has(x)));
}

/** One must hold: the union, known only if every side is known. */
export function eitherActions(
  sets: readonly (ReadonlySet<string> | undefined)[],
): ReadonlySet<string> | undefined {
  if (sets.some((x) => x === undefined)) return undefined;
  return new Set(sets.flatMap((x) => [...(x as ReadonlySet<string>)]));
}

/** A problem found while compiling, at a path inside the rule document. */
export interface CompileProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export const MODIFIERS = [
  'contains',
  'startswith',
  'endswith',
  're',
  'i',
  'cidr',
  'gt',
  'gte',
  'lt',
  'lte',
  'exists',
  'fieldref',
  'all',
  'cased',
] as const;
type Modifier = (typeof MODIFIERS)[number];

/** A field getter, or a problem when the path names no field of a detection event. */
export function fieldOrProblem(
  path: string,
  at: readonly (string | number)[],
  problems: CompileProblem[],
): FieldGetter {
  const getter = compileField(path);
  if (getter === undefined) {
    problems.push({ path: at, message: `unknown field "${path}"` });
    return () => undefined;
  }
  return getter;
}

type Scalar = string | number | boolean;
type ValueTest = (value: Scalar, event: DetectionEvent, zone: string) => boolean;

function lower(v: Scalar, cased: boolean): string {
  return cased ? String(v) : lowerCase(String(v));
}

/**
 * `s.toLowerCase()`, without allocating a copy when `s` is ASCII without a capital (event
 * values mostly are: V8 copies the string even when nothing changes, and this ran several times
 * per event and rule).
 */
export function lowerCase(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (c >= 65 && c <= 90)) return s.toLowerCase();
  }
  return s;
}

/** Whether one matcher holds (a loop: a callback closing over the event allocates per call). */
function anyOf(ms: readonly Matcher[], e: DetectionEvent, zone: string): boolean {
  for (let i = 0; i < ms.length; i++) if ((ms[i] as Matcher)(e, zone)) return true;
  return false;
}

/** Whether every matcher holds. */
function allOf(ms: readonly Matcher[], e: DetectionEvent, zone: string): boolean {
  for (let i = 0; i < ms.length; i++) if (!(ms[i] as Matcher)(e, zone)) return false;
  return true;
}

/** Sigma matches strings case-insensitively unless `|cased`; numbers compare as numbers. */
function valueTest(
  mods: ReadonlySet<Modifier>,
  pattern: unknown,
  at: readonly (string | number)[],
  problems: CompileProblem[],
): ValueTest | undefined {
  const cased = mods.has('cased');
  if (mods.has('gt') || mods.has('gte') || mods.has('lt') || mods.has('lte')) {
    if (typeof pattern !== 'number') {
      problems.push({ path: at, message: 'a numeric comparison needs a number' });
      return undefined;
    }
    if (mods.has('gt')) return (v) => typeof v === 'number' && v > pattern;
    if (mods.has('gte')) return (v) => typeof v === 'number' && v >= pattern;
    if (mods.has('lt')) return (v) => typeof v === 'number' && v < pattern;
    return (v) => typeof v === 'number' && v <= pattern;
  }
  if (typeof pattern !== 'string' && typeof pattern !== 'number' && typeof pattern !== 'boolean') {
    problems.push({ path: at, message: 'a value must be a string, number, boolean or null' });
    return undefined;
  }
  if (mods.has('fieldref')) {
    const other = fieldOrProblem(String(pattern), at, problems);
    return (v, e, zone) => {
      const o = other(e, zone);
      // Absent is never equal to anything, not even to another absent value.
      if (o === undefined || Array.isArray(o)) return false;
      return lower(v, cased) === lower(o as Scalar, cased);
    };
  }
  if (mods.has('cidr')) {
    const list = new BlockList();
    const [addr, bits] = String(pattern).split('/');
    const family = isIP(addr ?? '');
    const prefix = Number(bits);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      problems.push({ path: at, message: `not a CIDR block: ${String(pattern)}` });
      return undefined;
    }
    list.addSubnet(addr as string, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return (v) => {
      if (typeof v !== 'string') return false;
      const f = isIP(v);
      return f !== 0 && list.check(v, f === 4 ? 'ipv4' : 'ipv6');
    };
  }
  if (mods.has('re')) {
    let re: RegExp;
    try {
      re = new RegExp(String(pattern), mods.has('i') ? 'i' : '');
    } catch (err) {
      problems.push({ path: at, message: `bad regular expression: ${(err as Error).message}` });
      return undefined;
    }
    return (v) => re.test(String(v));
  }
  const p = lower(pattern, cased);
  if (mods.has('contains')) return (v) => lower(v, cased).includes(p);
  if (mods.has('startswith')) return (v) => lower(v, cased).startsWith(p);
  if (mods.has('endswith')) return (v) => lower(v, cased).endsWith(p);
  if (typeof pattern === 'number') return (v) => v === pattern || String(v) === p;
  if (typeof pattern === 'boolean') return (v) => v === pattern;
  return (v) => typeof v !== 'boolean' && lower(v, cased) === p;
}

/** One `field|mod…: value(s)` line of a selection. */
function fieldCondition(
  key: string,
  value: unknown,
  at: readonly (string | number)[],
  problems: CompileProblem[],
): Matcher {
  const [path, ...modNames] = key.split('|');
  const mods = new Set<Modifier>();
  for (const m of modNames) {
    if (!(MODIFIERS as readonly string[]).includes(m)) {
      problems.push({
        path: at,
        message: `unknown modifier "${m}" (known: ${MODIFIERS.join(', ')})`,
      });
      return () => false;
    }
    mods.add(m as Modifier);
  }
  const get = fieldOrProblem(path ?? '', at, problems);
  if (mods.has('exists')) {
    if (typeof value !== 'boolean') {
      problems.push({ path: at, message: '|exists takes true or false' });
      return () => false;
    }
    return (e, zone) => (get(e, zone) !== undefined) === value;
  }
  // Sigma: `field: null` matches an absent field.
  if (value === null) return (e, zone) => get(e, zone) === undefined;
  const patterns = Array.isArray(value) ? (value as unknown[]) : [value];
  if (patterns.length === 0) {
    problems.push({ path: at, message: 'an empty list matches nothing' });
    return () => false;
  }
  const tests: ValueTest[] = [];
  patterns.forEach((p, i) => {
    const t = valueTest(mods, p, Array.isArray(value) ? [...at, i] : at, problems);
    if (t) tests.push(t);
  });
  // Equality against a list of plain strings: one Set lookup instead of a loop.
  const plain =
    modNames.length === 0 && patterns.every((p) => typeof p === 'string') && !mods.has('all');
  const set = plain ? new Set(patterns.map((p) => String(p).toLowerCase())) : undefined;
  const all = mods.has('all');
  const one = (v: Scalar, e: DetectionEvent, zone: string): boolean => {
    if (set !== undefined) return typeof v === 'string' && set.has(lowerCase(v));
    if (all) {
      for (let i = 0; i < tests.length; i++) if (!(tests[i] as ValueTest)(v, e, zone)) return false;
      return true;
    }
    for (let i = 0; i < tests.length; i++) if ((tests[i] as ValueTest)(v, e, zone)) return true;
    return false;
  };
  return (e, zone) => {
    const v = get(e, zone);
    if (v === undefined) return false;
    if (Array.isArray(v)) {
      // A list field (flags, metadata lists) matches when one of its items does.
      return v.some(
        (item) =>
          (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') &&
          one(item, e, zone),
      );
    }
    return one(v as Scalar, e, zone);
  };
}

/** A selection: a map (all lines must hold) or a list of maps (one must hold). */
export function compileSelection(
  body: unknown,
  at: readonly (string | number)[],
  problems: CompileProblem[],
): Matcher {
  if (Array.isArray(body)) {
    if (body.length === 0) problems.push({ path: at, message: 'an empty selection' });
    const alts = body.map((b, i) => compileSelection(b, [...at, i], problems));
    return withActions((e, zone) => anyOf(alts, e, zone), eitherActions(alts.map(actionsOf)));
  }
  if (body === null || typeof body !== 'object') {
    problems.push({ path: at, message: 'a selection is a map of fields or a list of maps' });
    return () => false;
  }
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length === 0) problems.push({ path: at, message: 'an empty selection' });
  const parts = entries.map(([k, v]) => fieldCondition(k, v, [...at, k], problems));
  const action = (body as Record<string, unknown>)['action'];
  const actions =
    typeof action === 'string'
      ? new Set([action.toLowerCase()])
      : Array.isArray(action) && action.every((a) => typeof a === 'string')
        ? new Set(action.map((a: string) => a.toLowerCase()))
        : undefined;
  if (parts.length === 1) return withActions(parts[0] as Matcher, actions);
  return withActions((e, zone) => {
    for (const p of parts) if (!p(e, zone)) return false;
    return true;
  }, actions);
}

const MAX_DEPTH = 32;

/**
 * The Sigma condition: selection names, `and`, `or`, `not`, parentheses, `1 of name*` and
 * `all of name*`. A small recursive-descent parser over the rule author's text, its depth capped.
 */
export function compileCondition(
  text: string,
  selections: ReadonlyMap<string, Matcher>,
  at: readonly (string | number)[],
  problems: CompileProblem[],
): Matcher {
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? [];
  let pos = 0;
  let failed = false;
  // The first problem is the one to report: what follows it is parsed out of step.
  const fail = (message: string): Matcher => {
    if (!failed) problems.push({ path: at, message });
    failed = true;
    return () => false;
  };
  const pick = (pattern: string): Matcher[] => {
    const prefix = pattern.endsWith('*') ? pattern.slice(0, -1) : undefined;
    return [...selections]
      .filter(([n]) => (prefix === undefined ? n === pattern : n.startsWith(prefix)))
      .map(([, m]) => m);
  };
  const expr = (depth: number): Matcher => {
    if (depth > MAX_DEPTH) return fail('condition nested too deeply');
    const terms = [term(depth)];
    while (tokens[pos] === 'or') {
      pos++;
      terms.push(term(depth));
    }
    if (terms.length === 1) return terms[0] as Matcher;
    return withActions((e, z) => anyOf(terms, e, z), eitherActions(terms.map(actionsOf)));
  };
  const term = (depth: number): Matcher => {
    const factors = [factor(depth)];
    while (tokens[pos] === 'and') {
      pos++;
      factors.push(factor(depth));
    }
    if (factors.length === 1) return factors[0] as Matcher;
    return withActions(
      (e, z) => allOf(factors, e, z),
      factors.map(actionsOf).reduce(bothActions, undefined),
    );
  };
  const factor = (depth: number): Matcher => {
    if (depth > MAX_DEPTH) return fail('condition nested too deeply');
    const t = tokens[pos++];
    if (t === undefined) return fail('condition ends too early');
    if (t === 'not') {
      const inner = factor(depth + 1);
      return (e, z) => !inner(e, z);
    }
    if (t === '(') {
      const inner = expr(depth + 1);
      if (tokens[pos++] !== ')') return fail('missing )');
      return inner;
    }
    if (t === '1' || t === 'all') {
      if (tokens[pos++] !== 'of') return fail(`expected "of" after "${t}"`);
      const pattern = tokens[pos++] ?? '';
      const ms = pick(pattern);
      if (ms.length === 0) return fail(`no selection matches "${pattern}"`);
      return t === '1'
        ? withActions((e, z) => anyOf(ms, e, z), eitherActions(ms.map(actionsOf)))
        : withActions((e, z) => allOf(ms, e, z), ms.map(actionsOf).reduce(bothActions, undefined));
    }
    if (t === 'and' || t === 'or' || t === ')') return fail(`unexpected "${t}"`);
    const m = selections.get(t);
    return m ?? fail(`unknown selection "${t}"`);
  };
  if (tokens.length === 0) return fail('empty condition');
  const out = expr(0);
  if (pos < tokens.length) return fail(`unexpected "${tokens[pos]}"`);
  return out;
}
