// The CPU emulator's standard headers (test/cuda/emu.ts's shim starts with them) as a precompiled
// header: parsing <functional>, <string>, <vector> … is about 0.37 s of the 0.9 s user time a
// small emulation build takes, and CI builds hundreds of them. A g++ run of a source that starts
// with this block is given a copy of the source that includes the block from a header instead,
// and that header's .gch (built once per run and flag set, in the run's compile-cache directory)
// stands in for it. The preprocessed program is the same; where g++ finds the .gch unusable it
// reads the header itself, so a bad .gch costs time, never a result. `#line` keeps the source's
// own line numbers and name in diagnostics.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const EMU_SHIM_INCLUDES = [
  '',
  // The fibers switch with _longjmp between stacks, which a fortified build's check refuses.
  '#undef _FORTIFY_SOURCE',
  '#include <algorithm>',
  '#include <functional>',
  '#include <climits>',
  '#include <cmath>',
  '#include <cstddef>',
  '#include <cstdint>',
  '#include <cstdio>',
  '#include <cstdlib>',
  '#include <cstring>',
  '#include <math.h>',
  '#include <memory>',
  '#include <string>',
  '#include <setjmp.h>',
  '#include <sys/mman.h>',
  '#include <ucontext.h>',
  '#include <vector>',
  '',
].join('\n');

/** Flags that shape a precompiled header (all but inputs, the output and -D/-U macros). */
function headerFlags(args: readonly string[], source: number, out: number): string[] {
  return args.filter((a, i) => i !== source && i !== out && i !== out + 1 && !/^-[DU]/.test(a));
}

/** The header (with its .gch beside it) for `flags` in `dir`, built on first use. */
function precompiledShim(cmd: string, flags: readonly string[], dir: string): string {
  const tag = createHash('sha256')
    .update(JSON.stringify([cmd, flags, EMU_SHIM_INCLUDES]))
    .digest('hex')
    .slice(0, 16);
  const header = join(dir, `emu-shim-${tag}.h`);
  if (existsSync(`${header}.gch`)) return header;
  const tmp = `${header}.${process.pid}.tmp`;
  writeFileSync(tmp, EMU_SHIM_INCLUDES);
  renameSync(tmp, header);
  execFileSync(cmd, [...flags, '-x', 'c++-header', header, '-o', `${tmp}.gch`]);
  renameSync(`${tmp}.gch`, `${header}.gch`);
  return header;
}

/**
 * The arguments of a g++ run with the emulator's include block taken from the precompiled
 * header (the source rewritten beside itself), or `args` unchanged when the run is not such a
 * build or there is no compile-cache directory to keep the header in.
 */
export function withPrecompiledShim(
  cmd: string,
  args: readonly string[],
  cwd: string,
  dir: string | undefined,
): readonly string[] {
  if (dir === undefined || basename(cmd) !== 'g++') return args;
  const out = args.indexOf('-o');
  const sources = args.flatMap((a, i) => (/\.(cpp|cc|cxx)$/.test(a) && i !== out + 1 ? [i] : []));
  if (out < 0 || sources.length !== 1) return args;
  const at = sources[0]!;
  const path = resolve(cwd, args[at]!);
  const text = readFileSync(path, 'utf8');
  if (!text.startsWith(EMU_SHIM_INCLUDES)) return args;
  let header: string;
  try {
    header = precompiledShim(cmd, headerFlags(args, at, out), dir);
  } catch {
    return args; // no .gch: the build parses the headers itself, as without this module
  }
  const lines = EMU_SHIM_INCLUDES.split('\n').length;
  const rest = text.slice(EMU_SHIM_INCLUDES.length);
  const copy = path.replace(/(\.\w+)$/, '.pch$1');
  writeFileSync(copy, `#include "${header}"\n#line ${lines} ${JSON.stringify(path)}\n${rest}`);
  return args.map((a, i) => (i === at ? copy : a));
}
