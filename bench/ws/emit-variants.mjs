// Adds to a wgmma-ws build (emitted by bench/cuda/emit.mjs --engine wgmma-ws) copies of its
// wgmma-ws variants rendered with the core's plan overridden — options that are no Schedule
// field — so one device call checks and times them beside the defaults:
//   node bench/ws/emit-variants.mjs DIR SUFFIX '{"plan":{"pingpong":true},"schedule":{"blockK":176}}' [all|perf|NAME,...]
// `all` copies every wgmma-ws variant (for the check), `perf` only the timed ones, or the named kernels.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..', '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const { compile } = await import(dist('src/index.js'));
const { renderCuda, wgmmaWsCore, wgmmaWsPlan } = await import(dist('src/codegen/cuda/index.js'));
const [dirArg, suffix, json, which = 'perf'] = process.argv.slice(2);
// (plan and schedule overrides; e.g. '{"plan":{"overlap":true}}')
if (!dirArg || !suffix || !json) throw new Error('usage: emit-variants.mjs DIR SUFFIX PLAN_JSON [all|perf]');
const dir = resolve(dirArg);
const override = JSON.parse(json);
const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
const lists = [...(await import(pathToFileURL(join(root, 'bench/cuda/mma-list.mjs')).href)).default];
const limit = 227 * 1024;
const added = [];
for (const e of index) {
  if (e.engine !== 'wgmma-ws' || e.alt) continue;
  if (which === 'perf' && !(e.perf && e.pattern)) continue;
  if (which !== 'perf' && which !== 'all' && !(which.split(',').includes(e.kernel) && e.perf)) continue;
  const src = lists.find((x) => x.name === e.kernel)?.source;
  if (!src) continue;
  const schedule = { ...e.schedule, ...(override.schedule ?? {}) };
  const { kernel } = compile(readFileSync(join(root, src), 'utf8'), {
    target: 'cuda',
    file: src,
    headDim: e.headDim,
    dtype: e.dtype,
    schedule,
    limits: { maxWorkgroupStorageBytes: limit },
  });
  const variant = `${e.kernel}_${suffix}_${e.dtype}_d${e.headDim}`;
  const plan = { ...wgmmaWsPlan(kernel.schedule, limit), ...(override.plan ?? {}) };
  const a = renderCuda(
    { ...kernel, name: variant },
    { sourceHash: `bench:${e.kernel}`, scheduleHash: suffix },
    { core: wgmmaWsCore(plan) },
  );
  writeFileSync(join(dir, `${variant}.cu`), a.code);
  for (const [file, text] of Object.entries(a.files ?? {})) writeFileSync(join(dir, file), text);
  added.push({
    ...e,
    schedule,
    variant,
    kernel: `${e.kernel}_${suffix}`,
    cu: `${variant}.cu`,
    manifest: `${variant}.json`,
    alt: true,
  });
}
writeFileSync(join(dir, 'index.json'), JSON.stringify([...index, ...added], null, 2) + '\n');
console.log(`added ${added.length} ${suffix} variants (${json}) to ${dir}`);
