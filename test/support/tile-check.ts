// The tile-classification oracle shared by the tile property tests: compiles a random declaration
// through simplify + analyze-tiles, classifies every tile of a shape on the CPU (the TS evaluation
// of the same classifier the kernels evaluate) and checks each class against the dense mask; it
// also checks that the lowered mask agrees pair for pair with the independent AST interpreter
// behind the reference (a lowering or simplification bug shows here first).
import { expect } from 'vitest';
import { checkProgram } from '../../src/dsl/index.js';
import { printDecl } from '../../src/dsl/print.js';
import type { AttentionDecl } from '../../src/dsl/ast.js';
import { evaluate } from '../../src/ir/interp.js';
import type { AttentionKernel, TileClass } from '../../src/ir/kernel.js';
import { lowerDecl } from '../../src/ir/lower.js';
import { analyzeTiles } from '../../src/ir/passes/analyze-tiles.js';
import { simplifyExpr } from '../../src/ir/passes/simplify.js';
import { toKernel } from '../../src/ir/program.js';
import { elementRoots, hoistPlan } from '../../src/ir/passes/fuse.js';
import { kernelStages } from '../../src/ir/stages.js';
import { classifyTile } from '../../src/ir/tile-stats.js';
import { verify } from '../../src/ir/verify.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { testSchedule } from './hand-kernels.js';
import { makeInputs, type Shape } from './arbitraries.js';

/** Checks every tile of `shape`; returns how many tiles of each class it saw. */
export function checkTiles(
  decl: AttentionDecl,
  shape: Shape,
  blockQ: number,
  blockK: number,
  seed: number,
): Record<TileClass, number> {
  const checked = checkProgram({ kind: 'program', file: 'prop.attn', decls: [decl], header: '' });
  expect(checked.diagnostics, printDecl(decl)).toEqual([]);
  const lowered = lowerDecl(decl, checked.decls[0]!.defaults);
  const g = lowered.graph;
  const ir = analyzeTiles({ ...lowered, mask: simplifyExpr(g, lowered.mask) });
  expect(verify(ir)).toEqual([]);
  const { dtype: _storage, ...schedule } = testSchedule;
  const hoists = hoistPlan(elementRoots(ir.mask, ir.score, ir.tiles));
  const staged = { ...ir, hoists, schedule: { ...schedule, blockQ, blockK }, stages: kernelStages(ir) };
  const kernel: AttentionKernel = toKernel(staged);
  const inputs = makeInputs(shape, seed);
  const params = Object.fromEntries(checked.decls[0]!.defaults);
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk, D: shape.D };
  const env = { params, tensors: inputs.tensors, vars: sizes };
  const ref = declPredicates(decl, { params, tensors: inputs.tensors, sizes });
  const qOffset = shape.qOffset ?? shape.Nk - shape.Nq;
  const kOffset = shape.kOffset ?? 0;
  const counts = { empty: 0, full: 0, partial: 0 };
  for (let b = 0; b < shape.B; b++)
    for (let h = 0; h < shape.Hq; h++)
      for (let qt = 0; qt * blockQ < shape.Nq; qt++)
        for (let kt = 0; kt * blockK < shape.Nk; kt++) {
          const cls = classifyTile(
            kernel,
            { b, h, Nq: shape.Nq, Nk: shape.Nk, qOffset, kOffset, env },
            qt,
            kt,
          );
          counts[cls]++;
          for (let i = qt * blockQ; i < Math.min((qt + 1) * blockQ, shape.Nq); i++)
            for (let j = kt * blockK; j < Math.min((kt + 1) * blockK, shape.Nk); j++) {
              const q = i + qOffset;
              const k = j + kOffset;
              const allowed = evaluate(kernel.mask, { ...env, vars: { ...sizes, b, h, q, k } });
              const where = `${printDecl(decl)} b=${b} h=${h} q=${q} k=${k} tile=(${qt},${kt}) ${cls}`;
              expect(allowed, `IR mask vs reference mask: ${where}`).toBe(ref.mask(b, h, q, k));
              if (cls === 'empty') expect(allowed, where).toBe(false);
              if (cls === 'full') expect(allowed, where).toBe(true);
            }
        }
  return counts;
}
