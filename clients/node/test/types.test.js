// The hand-written TypeScript types: test/types/usage.ts, which uses the whole API through the
// package's own name, must compile with tsc --strict against src/index.d.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

test('index.d.ts type-checks the documented usage (tsc --strict)', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const project = fileURLToPath(new URL('./types/tsconfig.json', import.meta.url));
  const result = await promisify(execFile)(process.execPath, [tsc, '-p', project]).catch((error) => error);
  assert.equal(result.code ?? 0, 0, `tsc failed:\n${result.stdout}${result.stderr}`);
});
