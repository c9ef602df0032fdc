// The subcommands as data: each one's usage lines and the flags it takes. cli.ts prints a
// command's own usage for `attnc COMMAND --help` and refuses flags another command owns.

export type CommandName = 'check' | 'compile' | 'run' | 'viz' | 'repl' | 'doctor';

export interface CommandSpec {
  readonly usage: string;
  /** Flags besides --help (names as parseArgs keys). */
  readonly flags: readonly string[];
}

const shapeFlags = ['nq', 'nk', 'heads', 'kv-heads', 'batch', 'param', 'seed', 'entry'];

export const commands: Readonly<Record<CommandName, CommandSpec>> = {
  check: { usage: 'attnc check FILE... [--json]', flags: ['json'] },
  compile: {
    usage: `attnc compile FILE [--target wgsl|cuda] [--out DIR] [--dump-ir=PASS] [--entry NAME]
                     (--target: default wgsl)
                     (--dump-ir passes: lower, simplify, analyze-tiles, residue-classes, neighbourhood-patches,
                      fuse, schedule, stages, legalize-wgsl|legalize-cuda)
                     [--dim N] [--value-dim N] [--dtype f32|f16|bf16] [--no-lse]
                     (--dtype: default f32 on wgsl, bf16 on cuda)
                     [--importance sum|normalized]   (the per-key importance output)
                     [--emit ts|js]   (wgsl: a self-contained module with a typed createKernel)
                     [--shared-runtime]   (with --emit and --out: modules import one attnc-runtime)
                     [--no-decode]   (leave out the split-KV decode variant: few-query launches run prefill; smaller)
                     [--arch sm_80|sm_86|sm_89|sm_90a]   (cuda; default sm_90a)
                     [--quant-prefill staged|fused]   (cuda, quantized K/V: dequantize once into a workspace, or per tile)
                     [--decode-lean off|knob|on]   (cuda: the tensor-core decode's lean code; default on for quantized K/V)
                     [--shader-f16]   (wgsl: the target device has shader-f16, for --dtype f16)
                     [--wgsl-engine row|coop]   (wgsl; default row: coop is for GPUs, row for CPU adapters)
                     [--backward]   (wgsl with --emit: the module exports backward(); cuda: NAME_backward.cu)
                     [--backward-engine simt|mma|wgmma]   (cuda; default: f32 simt, sm_90a wgmma, else mma)
                     [--json]   (one JSON document on stdout: docs/CLI.md)`,
    flags: [
      'target',
      'out',
      'dump-ir',
      'entry',
      'dim',
      'value-dim',
      'dtype',
      'no-lse',
      'importance',
      'emit',
      'shared-runtime',
      'no-decode',
      'backward',
      'backward-engine',
      'arch',
      'quant-prefill',
      'decode-lean',
      'shader-f16',
      'wgsl-engine',
      'json',
    ],
  },
  run: {
    usage: `attnc run FILE [--nq N] [--nk N] [--heads N] [--kv-heads N] [--batch N] [--dim N]
                 [--dtype f32|f16] [--param NAME=VALUE ...] [--seed N] [--repeat N] [--entry NAME]
                 [--importance sum|normalized]   (also compare the importance output)
                 [--wgsl-engine row|coop]   (default: coop on a GPU adapter, row on a CPU one)
                 [--json]`,
    flags: [...shapeFlags, 'dim', 'dtype', 'repeat', 'importance', 'wgsl-engine', 'json'],
  },
  viz: {
    usage: `attnc viz FILE --out mask.svg|mask.png [--nq N] [--nk N] [--head I] [--batch-index I] [--heads N]
                 [--kv-heads N] [--dim N] [--param NAME=VALUE ...] [--seed N] [--entry NAME]
                 (--head/--batch-index: which slice to draw; viz's --batch I is the old spelling of --batch-index)`,
    // 'batch' (from shapeFlags): viz's old spelling of --batch-index, kept for scripts; in run and
    // the REPL --batch is the batch size.
    flags: [...shapeFlags, 'out', 'head', 'batch-index', 'dim'],
  },
  repl: {
    usage: 'attnc repl [FILE]       (history in $ATTNC_HOME/history, default ~/.attnc/history)',
    flags: [],
  },
  doctor: {
    usage: `attnc doctor [--install-lavapipe] [--json]   (Node, webgpu, adapters, Vulkan drivers, nvcc:
                 what is missing and what to do; --install-lavapipe: a CPU Vulkan driver, Debian/Ubuntu)`,
    flags: ['install-lavapipe', 'json'],
  },
};

export const isCommand = (x: string): x is CommandName => Object.hasOwn(commands, x);

/** The flags given that `command` does not take, as `--flag` words. */
export function foreignFlags(command: CommandName, given: Readonly<Record<string, unknown>>): string[] {
  const own = new Set([...commands[command].flags, 'help']);
  return Object.keys(given)
    .filter((f) => given[f] !== undefined && !own.has(f))
    .map((f) => `--${f}`);
}
