// The REPL's state and input handling, independent of readline: definitions (the latest one of a
// name wins; the current kernel is the last defined), shape settings, param values, and the
// multi-line input buffer. Bad input prints diagnostics and leaves the state as it was.
import { compile, type Compiled } from '../../compile.js';
import { CompileError, renderDiagnostics } from '../../diagnostics.js';
import { frontend } from '../../dsl/index.js';
import type { StorageDType } from '../../ir/kernel.js';
import { headDimMisfit } from '../compile-flags.js';
import { userErrorMessage } from '../exit.js';
import { appendStatement, isStatement, needsMore } from './input.js';
import type { Screen } from './term-mask.js';

/** A user-facing error in a command: printed as `error: …`, the session goes on. */
export class ReplError extends Error {}

export interface Def {
  readonly name: string;
  /** The declaration's text (with its doc comment), as typed or loaded. */
  readonly source: string;
}

export interface Settings {
  nq: number;
  nk: number;
  heads: number;
  /** undefined: the same as heads. */
  kvHeads: number | undefined;
  batch: number;
  dim: number;
  /** undefined: the target's default (f32 for WGSL, bf16 for CUDA). */
  dtype: StorageDType | undefined;
  /** The query head `:mask` draws. */
  head: number;
  seed: number;
  repeat: number;
}

export const defaultSettings: Readonly<Settings> = {
  nq: 1024,
  nk: 1024,
  heads: 1,
  kvHeads: undefined,
  batch: 1,
  dim: 64,
  dtype: undefined,
  head: 0,
  seed: 1,
  repeat: 1,
};

export interface Output extends Screen {
  write(text: string): void;
}

export const REPL_FILE = '<repl>';

export class Session {
  readonly defs = new Map<string, Def>();
  readonly settings: Settings = { ...defaultSettings };
  readonly params: Record<string, number | boolean> = {};
  private pending: string[] = [];
  private cache = new Map<string, Compiled>();

  constructor(
    readonly out: Output,
    /** Runs a `:command` line; returns true to end the session. */
    private readonly command: (s: Session, line: string) => boolean | Promise<boolean>,
  ) {}

  print(text: string): void {
    this.out.write(text.endsWith('\n') ? text : text + '\n');
  }

  get current(): Def | undefined {
    let last: Def | undefined;
    for (const d of this.defs.values()) last = d;
    return last;
  }

  requireCurrent(): Def {
    const d = this.current;
    if (!d) throw new ReplError('no attention defined yet: type one, or :load FILE');
    return d;
  }

  prompt(): string {
    return this.pending.length ? '   ...> ' : 'attnc> ';
  }

  /** Ctrl-C: drops a half-typed block; false when there was none. */
  discardPending(): boolean {
    const had = this.pending.length > 0;
    this.pending = [];
    return had;
  }

  /**
   * One line of input; true when the session should end. Synchronous unless a command awaits
   * (only :run does), so the next prompt is up before readline echoes the next line of a paste.
   */
  input(line: string): boolean | Promise<boolean> {
    const t = line.trim();
    // A command ends an unfinished block (no .attn line starts with `:`): a stray `[` or `(` used
    // to swallow every line after it, `:quit` included, until Ctrl-C.
    if (this.pending.length && t.startsWith(':')) {
      const n = this.pending.length;
      this.pending = [];
      this.print(`dropped the unfinished input above (${n} line${n === 1 ? '' : 's'})`);
    }
    if (!this.pending.length) {
      if (!t) return false;
      if (t.startsWith(':')) return this.command(this, t);
    }
    this.pending.push(line);
    const text = this.pending.join('\n');
    if (needsMore(text, line)) return false;
    this.pending = [];
    try {
      if (isStatement(text)) this.addStatement(text);
      else this.define(text, REPL_FILE);
    } catch (e) {
      // A limit the input hit (too deep to parse): one line, the session goes on.
      const message = userErrorMessage(e);
      if (message === undefined) throw e;
      this.print(`error: ${message}`);
    }
    return false;
  }

  /** The WGSL compilation of `def` (portable limits) at the current head dim; cached. */
  compiled(def: Def): Compiled {
    return this.compiledAt(def, this.settings.dim);
  }

  /**
   * The WGSL compilation of `def` at head dim `dim`; cached. No schedule fitting the head dim is
   * the `dim` setting's doing, so the error names it (compile() can only point at the name).
   */
  compiledAt(def: Def, dim: number): Compiled {
    const key = `${dim}\n${def.source}`;
    let c = this.cache.get(key);
    if (!c) {
      try {
        c = compile(def.source, { target: 'wgsl', file: REPL_FILE, headDim: dim });
      } catch (e) {
        const misfit = headDimMisfit(e);
        if (misfit) throw new ReplError(`dim ${dim}: ${def.name}: ${misfit}: :set a smaller dim`);
        throw e;
      }
      if (this.cache.size > 64) this.cache.clear();
      this.cache.set(key, c);
    }
    return c;
  }

  /** Param values for `def`'s kernel: the session's, for the params it declares. */
  paramsFor(def: Def): Record<string, number | boolean> {
    const out: Record<string, number | boolean> = {};
    for (const p of this.compiled(def).kernel.params)
      if (Object.hasOwn(this.params, p.name)) out[p.name] = this.params[p.name]!;
    return out;
  }

  /**
   * Defines every error-free declaration of `text`; the last becomes current. Returns the names
   * defined. Declarations with errors keep their previous definition.
   */
  define(text: string, file: string): string[] {
    const fe = frontend(text, file);
    if (fe.diagnostics.length) this.print(renderDiagnostics(fe.diagnostics, text));
    const defined: string[] = [];
    for (const { decl } of fe.decls) {
      const doc = decl.doc
        ? decl.doc
            .split('\n')
            .map((l) => `// ${l}`.trimEnd())
            .join('\n') + '\n'
        : '';
      const def: Def = {
        name: decl.name,
        source: doc + text.slice(decl.span.offset, decl.span.offset + decl.span.length),
      };
      try {
        this.compiled(def);
      } catch (e) {
        if (e instanceof ReplError)
          this.print(`error: ${e.message}`); // the dim setting's misfit
        else if (e instanceof CompileError) this.print(e.message);
        else throw e;
        continue;
      }
      const again = this.defs.delete(def.name);
      this.defs.set(def.name, def);
      defined.push(def.name);
      if (file === REPL_FILE) this.print(`${again ? 'redefined' : 'defined'} ${def.name} (current)`);
    }
    const kept = fe.program.decls.map((d) => d.name).filter((n) => this.defs.has(n) && !defined.includes(n));
    if (kept.length) this.print(`(${kept.join(', ')} kept the previous definition)`);
    return defined;
  }

  /** A bare `mask`/`score`/`let` line: the current declaration with it appended. */
  private addStatement(text: string): void {
    const cur = this.current;
    if (!cur) {
      this.print('error: no attention to add a statement to: define one first, e.g. `attention a() { }`');
      return;
    }
    this.define(appendStatement(cur.source, text), REPL_FILE);
  }
}
