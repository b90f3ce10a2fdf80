export function renderErrorsMarkdown(
  tables: { package: string; descriptions: Readonly<Record<string, string>> }[],
): string;
export function withConfigTable(readme: string, table: string): string;
