// `node --import <this> ...`: records the process's ES modules (hooks.ts) in $VGPU_TEST_LOADS,
// and at exit the CommonJS ones (bindings, the addon's .node file), which ES module hooks
// do not see.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const record = process.env['VGPU_TEST_LOADS'];
if (record !== undefined && record !== '') {
  register('./hooks.js', import.meta.url, { data: { record } });
  const required = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    for (const path of Object.keys(required)) appendFileSync(record, `${pathToFileURL(path).href}\n`);
  });
}
