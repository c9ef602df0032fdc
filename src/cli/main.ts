#!/usr/bin/env node
// attnc — the executable: the command line (cli.ts) and its exit status.
import { runCli } from './cli.js';

void runCli(process.argv.slice(2)).then((code) => process.exit(code));
