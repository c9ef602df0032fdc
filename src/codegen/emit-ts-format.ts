// Formats emitted modules (emit-ts.ts) with prettier's standalone build. Imported lazily, so the
// compiler core never loads prettier: only the CLI and callers that ask for formatting do.
// The standalone build (not prettier's Node entry) keeps this usable from a browser bundle too.
// prettier is an optional peer dependency: a missing one is a MissingDependencyError.
import { importOptional } from '../optional.js';

/** Prettier options of generated modules (the repository's own style). */
const style = { singleQuote: true, printWidth: 110, trailingComma: 'all' } as const;

/** `text` (TS, JS or .d.ts) formatted. */
export async function formatModule(text: string): Promise<string> {
  const [prettier, typescript, estree] = await importOptional('prettier', 'formatting emitted modules', () =>
    Promise.all([
      import('prettier/standalone'),
      import('prettier/plugins/typescript'),
      import('prettier/plugins/estree'),
    ]),
  );
  // The TypeScript parser reads plain JS as well.
  return prettier.format(text, { ...style, parser: 'typescript', plugins: [typescript, estree] });
}

/** Every file of an emitted module, formatted. */
export async function formatFiles(files: Readonly<Record<string, string>>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) out[name] = await formatModule(text);
  return out;
}
