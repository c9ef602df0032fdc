// Runs a CUDA backward artifact (codegen/cuda/backward.ts) on the CPU through test/cuda/emu.ts's
// shim (fibers per CUDA thread): its device part is compiled with g++ beside a generated main that
// fills the Args struct from input files, launches bwd_dq, (bwd_invert,) bwd_dkdv and bwd_reduce as
// the launcher does (bwd_invert over B·H threads: G ≤ H, the rest return), and writes dq dk dv and the gradient slots back.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CudaBackwardArtifact } from '../../src/codegen/cuda/backward.js';
import { EMU_RUN_HEAVY_CXX_FLAGS, compileEmulation, shim } from '../cuda/emu.js';
import { expectOk, run } from '../cuda/support.js';

export interface CudaBackwardCall {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset: number;
  readonly kOffset: number;
  readonly scale: number;
  readonly arrays: Readonly<Record<'q' | 'k' | 'v' | 'out' | 'lse' | 'dout', Float32Array>>;
  /** ∂L/∂lse [B·H·Nq]; absent: Args.dlse stays null. */
  readonly dlse?: Float32Array;
  /** A routing kernel's selection [B, G, Nq, K] (Args.indices), held constant. */
  readonly indices?: Int32Array;
  readonly tensors: Readonly<Record<string, Int32Array | Float32Array>>;
  readonly params: Readonly<Record<string, number>>;
  /** Gradient slots (params, then the f32 tensors' elements), as the launcher's _slots says. */
  readonly slots: number;
}

export interface CudaBackwardResult {
  readonly dq: Float32Array;
  readonly dk: Float32Array;
  readonly dv: Float32Array;
  readonly grads: Float32Array;
}

function driver(art: CudaBackwardArtifact, c: CudaBackwardCall, dir: string): string {
  const ns = art.namespace;
  const rows = c.B * c.H * c.Nq;
  const keys = c.B * c.Hkv * c.Nk;
  const sizes: Record<string, number> = {
    dq: rows * art.headDim,
    dk: keys * art.headDim,
    dv: keys * art.valueDim,
    delta: rows,
    partials: rows * c.slots,
    grads: c.slots,
  };
  const ints: Record<string, number> = {
    B: c.B,
    H: c.H,
    Hkv: c.Hkv,
    Nq: c.Nq,
    Nk: c.Nk,
    q_offset: c.qOffset,
    k_offset: c.kOffset,
    slots: c.slots,
  };
  const lines: string[] = [];
  const summaryLaunches: string[] = [];
  const inverted = art.fields.some((f) => f.name === 'inverted');
  const grid = (n: number): string => `dim3{${Math.max(1, Math.ceil(n / art.threads))}u, 1u, 1u}`;
  for (const f of art.fields) {
    const input =
      f.name === 'dlse'
        ? c.dlse
        : f.name === 'indices'
          ? c.indices
          : f.name in c.arrays
            ? c.arrays[f.name as 'q']
            : c.tensors[f.name.replace(/^t_/, '')];
    if (f.name === 'dlse' && !input) continue; // null: no gradient flows into lse
    if (f.name === 'inverted') continue; // sized by bwd_inv_ints once the ints are set (below)
    if (f.ctype.endsWith('*') && input) {
      const path = join(dir, `${f.name}.bin`);
      writeFileSync(path, new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
      lines.push(`  a.${f.name} = (${f.ctype})load("${path}", ${input.byteLength});`);
    } else if (f.name.startsWith('s_')) {
      const blocks = Math.ceil(c.tensors[f.name.slice(2)]!.length / art.summaryBlock);
      lines.push(`  a.${f.name} = (${f.ctype})poisoned(${8 * blocks});`);
      summaryLaunches.push(
        blocks > 0
          ? `  emu::launch(${grid(blocks)}, ${art.threads}, 0, [&] { ${ns}::bwd_summary_${f.name.slice(2)}(a); });`
          : '',
      );
    } else if (f.ctype.endsWith('*')) {
      lines.push(`  a.${f.name} = (${f.ctype})poisoned(${4 * sizes[f.name]!});`);
    } else if (f.name === 'scale') lines.push(`  a.scale = ${c.scale};`);
    else if (f.name in ints) lines.push(`  a.${f.name} = ${ints[f.name]};`);
    else lines.push(`  a.${f.name} = (${f.ctype})${c.params[f.name.replace(/^p_/, '')]};`);
  }
  const launch = (fn: string, n: number): string =>
    n > 0 ? `  emu::launch(${grid(n)}, ${art.threads}, 0, [&] { ${ns}::${fn}(a); });` : '';
  const save = (name: string, n: number): string =>
    `  save("${join(dir, `${name}.out`)}", (const void*)a.${name}, ${4 * n});`;
  return String.raw`
static void* poisoned(size_t bytes) { void* p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); memset(p, 0xff, bytes); return p; }
static void* load(const char* path, size_t bytes) {
  void* p = poisoned(bytes);
  FILE* f = fopen(path, "rb");
  if (bytes && fread(p, 1, bytes, f) != bytes) exit(3);
  fclose(f);
  return p;
}
static void save(const char* path, const void* p, size_t bytes) { FILE* f = fopen(path, "wb"); fwrite(p, 1, bytes, f); fclose(f); }
int main() {
  ${ns}::Args a{};
${lines.join('\n')}
${inverted ? `  a.inverted = (int*)poisoned(4 * ${ns}::bwd_inv_ints(a));` : ''}
${summaryLaunches.join('\n')}
${launch('bwd_dq', rows)}
${inverted && keys > 0 ? launch('bwd_invert', c.B * c.H) : ''}
${launch('bwd_dkdv', keys)}
${launch('bwd_reduce', c.slots)}
${save('dq', sizes.dq!)}
${save('dk', sizes.dk!)}
${save('dv', sizes.dv!)}
${save('grads', c.slots)}
  return 0;
}
`;
}

/** The device part of the artifact (includes dropped, the launcher cut off). */
function devicePart(art: CudaBackwardArtifact): string {
  const end = `} // namespace ${art.namespace}`;
  return art.code
    .slice(0, art.code.indexOf(end) + end.length)
    .split('\n')
    .filter((l) => !l.startsWith('#include'))
    .join('\n');
}

export async function emulateCudaBackward(
  art: CudaBackwardArtifact,
  c: CudaBackwardCall,
): Promise<CudaBackwardResult> {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-emu-'));
  const src = join(dir, 'bwd.emu.cpp');
  writeFileSync(src, [shim, devicePart(art), driver(art, c, dir)].join('\n'));
  const exe = join(dir, 'bwd.emu');
  await compileEmulation(src, exe, `g++ (CPU emulation of ${art.name})`, EMU_RUN_HEAVY_CXX_FLAGS);
  expectOk(await run(exe, []), `emulated ${art.name}`);
  const read = (name: string): Float32Array => {
    const u = new Uint8Array(readFileSync(join(dir, `${name}.out`)));
    return new Float32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
  };
  return { dq: read('dq'), dk: read('dk'), dv: read('dv'), grads: read('grads') };
}
