// Builds the generated parts of the documentation from the code, so they cannot drift:
// ERRORS.md from the error tables of every package, and the README's configuration table.
// Used by scripts/generate-docs.mjs (writes the files) and test/docs.test.ts (checks them).

/**
 * @param {{ package: string, descriptions: Record<string, string> }[]} tables
 * @returns {string}
 */
export function renderErrorsMarkdown(tables) {
  const lines = [
    '# Error codes',
    '',
    'Every error Vigil returns or raises carries one of these stable codes. HTTP errors use one body',
    'shape: `{"error":{"code","message","details":[{"index","path","message"}]}}`; `details` names',
    'each problem (the event index where there is one, and a JSON pointer). Codes marked retriable',
    'come with `Retry-After`.',
    '',
    'This file is generated from the error tables in the code (`npm run docs`); a test keeps them equal.',
    '',
  ];
  for (const table of tables) {
    lines.push(`## ${table.package}`, '', '| code | meaning |', '|---|---|');
    for (const [code, description] of Object.entries(table.descriptions)) {
      lines.push(`| \`${code}\` | ${description.replaceAll('|', '\\|')} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

/** Replaces the generated configuration table inside the README text. */
export function withConfigTable(readme, table) {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md lacks the config-table markers');
  return readme.slice(0, start + START.length) + '\n' + table + '\n' + readme.slice(end);
}
