// Tab completion: commands after `:`, their arguments (passes, targets, settings, names, file
// paths after :load/:save), and in code the keywords, builtins and the current kernel's params.
import { readdirSync } from 'node:fs';
import { tensorDimNames } from '../../dsl/ast.js';
import { builtinFunctions, builtinVars } from '../../dsl/builtins.js';
import { passNames } from '../../ir/pipeline.js';
import { commands } from './commands.js';
import { runFlags } from './run.js';
import type { Session } from './session.js';
import { settingNames } from './settings.js';

export const keywords = ['attention', 'mask', 'score', 'let', 'true', 'false', 'int', 'f32', 'bool', 'i32'];

type Completion = [string[], string];

const startsWith = (items: Iterable<string>, prefix: string): string[] =>
  [...new Set(items)].filter((x) => x.startsWith(prefix)).sort();

function paths(partial: string): Completion {
  const cut = partial.lastIndexOf('/') + 1;
  const dir = partial.slice(0, cut);
  const base = partial.slice(cut);
  try {
    const entries = readdirSync(dir || '.', { withFileTypes: true })
      .filter((e) => e.name.startsWith(base) && (base.startsWith('.') || !e.name.startsWith('.')))
      .map((e) => dir + e.name + (e.isDirectory() ? '/' : ''));
    return [entries.sort(), partial];
  } catch {
    return [[], partial];
  }
}

/** Names in the current kernel's scope: params and lets (from its source, cheaply). */
function kernelNames(s: Session): string[] {
  const cur = s.current;
  if (!cur) return [];
  const params = s.compiled(cur).kernel.params.map((p) => p.name);
  const tensors = s.compiled(cur).kernel.tensors.map((t) => t.name);
  const lets = [...cur.source.matchAll(/\blet\s+([A-Za-z_]\w*)/g)].map((m) => m[1]!);
  return [...params, ...tensors, ...lets];
}

function commandArgs(s: Session, cmd: string, arg: string): string[] {
  switch (cmd) {
    case 'emit':
      return ['wgsl', 'cuda'];
    case 'ir':
      return [...passNames('wgsl'), 'legalize-cuda'];
    case 'set':
      return [
        ...Object.keys(settingNames),
        ...(s.current ? s.compiled(s.current).kernel.params.map((p) => p.name) : []),
      ].map((n) => `${n}=`);
    case 'unset':
      return [...Object.keys(settingNames), ...Object.keys(s.params)];
    case 'use':
    case 'show':
      return [...s.defs.keys()];
    case 'run':
      return arg.startsWith('-') ? [...runFlags] : [];
    default:
      return [];
  }
}

/** Never throws: a kernel that no longer compiles (say after `:set dim=…`) just offers less. */
export function complete(s: Session, line: string): Completion {
  try {
    return completeLine(s, line);
  } catch {
    return [[], line];
  }
}

function completeLine(s: Session, line: string): Completion {
  const cmd = /^\s*:(\S*)(\s+)?/.exec(line);
  if (cmd) {
    const name = cmd[1]!;
    if (!cmd[2])
      return [
        startsWith(
          Object.keys(commands).map((c) => `:${c}`),
          `:${name}`,
        ),
        line.trimStart(),
      ];
    const arg = /(\S*)$/.exec(line)![1]!;
    if (name === 'load' || name === 'save') return paths(line.slice(cmd[0].length));
    return [startsWith(commandArgs(s, name, arg), arg), arg];
  }
  const word = /[A-Za-z_]\w*$/.exec(line)?.[0] ?? '';
  if (!word) return [[], ''];
  const names = [
    ...keywords,
    ...tensorDimNames,
    ...Object.keys(builtinVars),
    ...Object.keys(builtinFunctions),
    ...kernelNames(s),
  ];
  return [startsWith(names, word), word];
}
