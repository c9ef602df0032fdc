// The browser chevrotain (dist/browser/chevrotain.js, scripts/build-browser.mjs) that package.json's
// "browser" field points `chevrotain` at: every platform-'browser' bundle of our sources takes it
// from there. `npm run build` makes it; a test run without a build (or after the lite lodash or the
// build script changed) makes it first.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

export const browserChevrotain = 'dist/browser/chevrotain.js';
const inputs = [
  'src/vendor/lodash-es-lite.ts',
  'scripts/build-browser.mjs',
  'node_modules/chevrotain/package.json',
];

export function ensureBrowserChevrotain(): void {
  const built = existsSync(browserChevrotain) ? statSync(browserChevrotain).mtimeMs : -1;
  if (inputs.some((f) => statSync(f).mtimeMs > built))
    execFileSync(process.execPath, ['scripts/build-browser.mjs'], { stdio: 'inherit' });
}
