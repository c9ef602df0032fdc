// The upload of a host array into a GPUBuffer (src/codegen/emit-ts-upload.ts) is one text in an
// emitted module: dispatch's and backward's differ only in their names and indentation, so a fix
// to one (Dawn's writeBuffer takes no SharedArrayBuffer, nor a length that is not a multiple of 4)
// is a fix to both. Their behaviour on shared memory: test/runtime/shared-memory.test.ts.
import { describe, expect, it } from 'vitest';
import { compileBackward } from '../../src/backward.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';

/** Each run of lines that starts with the upload's comment, up to its closing brace, unindented. */
function uploads(text: string): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (!line.trim().startsWith('// writeBuffer wants a multiple of 4 bytes')) return;
    const indent = line.length - line.trimStart().length;
    const end = lines.findIndex((l, j) => j > i && l === `${' '.repeat(indent)}}`);
    out.push(
      lines
        .slice(i, end + 1)
        .map((l) => l.slice(indent))
        .join('\n'),
    );
  });
  return out;
}

describe('emitted host uploads', () => {
  it('dispatch and backward upload with one text (TS and JS)', () => {
    const c = compileBackward('attention c() { mask causal }', { headDim: 16 });
    for (const lang of ['ts', 'js'] as const) {
      const { files } = emitKernelModule(c.artifact, { lang, backward: c.backward });
      const [dispatch, backward, ...rest] = uploads(files[`c.${lang}`]!);
      expect(rest).toEqual([]);
      expect(dispatch).toContain('padded.set(new Uint8Array(data');
      expect(backward).toBe(dispatch!.replaceAll('data!', 'data').replace('(size)', '(4 * n)'));
    }
  });
});
