#!/usr/bin/env node
// attnc — the executable: the command line (cli.ts) and its exit status.
import { runCli } from './cli.js';

// process.exit drops what a pipe has not taken yet (a .cu past 64 KB piped into a pager came out
// cut): exit once stdout and stderr have drained. Writes complete in order, so an empty write's
// callback runs after every earlier one.
void runCli(process.argv.slice(2)).then((code) =>
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code))),
);
