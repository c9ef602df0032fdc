// Compile checks with the real toolchain (no GPU needed): every hand kernel's .cu compiles with
// nvcc for sm_90a in f32, f16 and bf16; the header compiles as C; the manifest's args layout is the
// C compiler's; the launcher's argument checks run on the host and report through last_error.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CUDA_INCLUDE,
  dtypes,
  expectOk,
  handKernels,
  render,
  renamed,
  run,
  scratchDir,
  testScheduleWith,
  writeArtifact,
  strictFlags,
  quickCheckFlags,
  hostExecutableFlags,
} from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const nvccFlags = strictFlags('sm_90a');

describe.concurrent('cuda backend: nvcc and the C compiler accept the artifacts', () => {
  const dir = scratchDir('nvcc');

  // One translation unit per dtype holding every hand kernel: each .cu is self-contained and its
  // names are namespaced, so this also checks that artifacts coexist (and halves compile time).
  for (const dtype of dtypes) {
    it(`every hand kernel compiles with nvcc -arch=sm_90a (${dtype})`, async () => {
      const parts = Object.entries(handKernels).map(([name, make]) => {
        const a = render(renamed(make(testScheduleWith({ dtype })), `${name}_${dtype}`));
        writeArtifact(dir, a);
        return a.code;
      });
      const tu = join(dir, `all_${dtype}.cu`);
      writeFileSync(tu, parts.join('\n'));
      // Valid CUDA is the question here (quickCheckFlags); the spill check below builds at -O3.
      expectOk(
        await run(NVCC, [...quickCheckFlags('sm_90a'), '-c', tu, '-o', join(dir, `all_${dtype}.o`)]),
        `nvcc ${tu}`,
      );
    });
  }

  it('a bench-sized schedule compiles standalone without spills (D=128, bf16)', async () => {
    const s = testScheduleWith({
      dtype: 'bf16',
      blockQ: 64,
      blockK: 64,
      threads: 256,
      headDim: 128,
      valueDim: 128,
    });
    const cu = writeArtifact(dir, render(renamed(handKernels.document!(s), 'document_d128')));
    const r = await run(NVCC, [...nvccFlags, '-Xptxas', '-v', '-c', cu, '-o', `${cu}.o`]);
    expectOk(r, `nvcc ${cu}`);
    const report = r.stderr.slice(r.stderr.indexOf("'attnc_document_d128_attention'"));
    expect(report).toMatch(/0 bytes spill stores/);
  });

  it('the header compiles as C11', async () => {
    const a = render(handKernels.document!());
    writeArtifact(dir, a);
    const c = join(dir, 'use_header.c');
    writeFileSync(c, '#include "document.h"\n#include "softcap_alibi.h"\nint main(void) { return 0; }\n');
    writeArtifact(dir, render(handKernels.softcap_alibi!()));
    const r = await run('gcc', [
      '-std=c11',
      '-pedantic',
      '-Wall',
      '-Werror',
      '-fsyntax-only',
      `-I${CUDA_INCLUDE}`,
      `-I${dir}`,
      c,
    ]);
    expectOk(r, 'gcc -x c (header)');
  });

  it("the manifest's args offsets are the C compiler's", async () => {
    for (const name of ['document', 'softcap_alibi', 'sliding_window']) {
      const a = render(handKernels[name]!());
      writeArtifact(dir, a);
      const fields = JSON.parse(a.files![`${name}.json`]!).args.fields as { field: string; offset: number }[];
      const c = join(dir, `offsets_${name}.c`);
      const S = `AttncArgs_${name}`;
      writeFileSync(
        c,
        [
          `#include <stdio.h>\n#include <stddef.h>\n#include "${name}.h"`,
          'int main(void) {',
          ...fields.map((f) => `  printf("%s %zu\\n", "${f.field}", offsetof(${S}, ${f.field}));`),
          `  printf("sizeof %zu\\n", sizeof(${S}));`,
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const exe = join(dir, `offsets_${name}`);
      expectOk(
        await run('gcc', ['-std=c99', `-I${CUDA_INCLUDE}`, `-I${dir}`, c, '-o', exe]),
        'gcc (offsets)',
      );
      const r = await run(exe, []);
      expectOk(r, exe);
      const want = [
        ...fields.map((f) => `${f.field} ${f.offset}`),
        `sizeof ${JSON.parse(a.files![`${name}.json`]!).args.bytes}`,
      ];
      expect(r.stdout.trim().split('\n')).toEqual(want);
    }
  });

  it('the launcher validates its arguments on the host and reports through last_error', async () => {
    const a = render(handKernels.document!());
    const cu = writeArtifact(dir, a);
    const main = join(dir, 'launcher_main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static void show(int code) { printf("%d|%s\\n", code, attnc_document_last_error()); }
int main(void) {
  AttncArgs_document a;
  static char dev[1 << 12] __attribute__((aligned(64)));
  show(attnc_document_launch(NULL, 0));
  attnc_document_args_init(&a, 2, 6, 4, 100, 130);
  show(attnc_document_launch(&a, 0));
  attnc_document_args_init(&a, 2, 8, 4, 100, 130);
  show(attnc_document_launch(&a, 0));
  a.q = dev; a.k = dev; a.v = dev; a.out = dev + 8;
  show(attnc_document_launch(&a, 0));
  a.out = dev; a.doc = (const int*)dev;
  show(attnc_document_launch(&a, 0));
  printf("q_offset=%d scale=%.6f summary=%zu\\n", a.q_offset, a.scale, attnc_document_summary_elems_doc(&a));
  a.doc_summary = (int*)dev; a.Nq = 0;
  show(attnc_document_launch(&a, 0));
  a.Nq = 100;
  show(attnc_document_launch(&a, 0)); /* valid: fails only for want of a GPU */
  return 0;
}
`,
    );
    const exe = join(dir, 'launcher_main');
    expectOk(await run(NVCC, [...hostExecutableFlags('sm_90a'), main, '-o', exe]), 'nvcc (launcher test)');
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('1|attnc_document: args is NULL');
    expect(lines[1]).toBe('1|attnc_document: H (6) must be a multiple of Hkv (4)');
    expect(lines[2]).toMatch(/^1\|attnc_document: q, k, v and out must be non-NULL and 16-byte aligned/);
    expect(lines[3]).toMatch(/^1\|.*16-byte aligned/);
    expect(lines[4]).toBe('1|attnc_document: summary scratch doc_summary is NULL');
    expect(lines[5]).toBe('q_offset=30 scale=0.250000 summary=18');
    expect(lines[6]).toBe('0|');
    // No GPU in CI: the first CUDA call fails and says why; a GPU machine launches for real.
    expect(lines[7]).toMatch(/^(2\|attnc_document: summary of doc: .+|0\|)$/);
  });
});
