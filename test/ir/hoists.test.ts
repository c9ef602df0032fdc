// fuse's hoisting plan (ir/passes/fuse.ts) is the one both backends render: the row-invariant
// `doc[q]` and the key-invariant `doc[k]` of a document mask come from kernel.hoists, so a plan
// without them leaves both lookups in the per-element code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { renderWgsl } from '../../src/codegen/wgsl/index.js';
import { compile } from '../../src/compile.js';
import { show } from '../../src/ir/graph.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';

const doc = readFileSync('stdlib/document.attn', 'utf8');
const meta = { sourceHash: 'test', scheduleHash: 'test' };
const unhoisted = (k: AttentionKernel): AttentionKernel => ({ ...k, hoists: { row: [], key: [] } });

describe('hoists', () => {
  it('fuse plans doc[q] per row and doc[k] per key', () => {
    const { kernel } = compile(doc, { target: 'cuda', headDim: 64 });
    expect(kernel.hoists.row.map(show)).toEqual(['(load:doc q)']);
    expect(kernel.hoists.key.map(show)).toEqual(['(load:doc k)']);
  });

  it('CUDA renders the IR plan: without it, nothing is hoisted', () => {
    const { kernel } = compile(doc, { target: 'cuda', headDim: 64, schedule: { engine: 'simt' } });
    expect(renderCuda(kernel, meta).code).toContain('hq0[r] = ');
    const code = renderCuda(unhoisted(kernel), meta).code;
    expect(code).not.toContain('hq0');
    expect(code).not.toContain('hk0');
  });

  it('WGSL renders the IR plan: without it, doc[q] is loaded per element', () => {
    const { kernel } = compile(doc, { target: 'wgsl' });
    const rowVar = /let rw\d+/;
    expect(renderWgsl(kernel, meta).code).toMatch(rowVar);
    expect(renderWgsl(unhoisted(kernel), meta).code).not.toMatch(rowVar);
  });
});
