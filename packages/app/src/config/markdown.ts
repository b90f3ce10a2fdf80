import { OPTIONS } from './options.js';

/** The README's configuration table, generated from the option list (a test keeps them equal). */
export function configMarkdownTable(): string {
  const rows = OPTIONS.map((o) => {
    const def =
      o.default === undefined
        ? '—'
        : Array.isArray(o.default)
          ? o.default.length === 0
            ? '—'
            : `\`${o.default.join(',')}\``
          : `\`${String(o.default)}\``;
    const choices = o.choices ? ` One of ${o.choices.map((c) => `\`${c}\``).join(', ')}.` : '';
    return `| \`${o.key}\` | \`${o.env}\` | \`--${o.flag}\` | ${def} | ${o.description.replaceAll('|', '\\|')}${choices} |`;
  });
  return [
    '| setting | environment | flag | default | meaning |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
