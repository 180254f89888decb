// `node --import <this> ...`: records the process's ES modules (hooks.ts) in $VGPU_TEST_LOADS.
import { register } from 'node:module';

const record = process.env['VGPU_TEST_LOADS'];
if (record !== undefined && record !== '') register('./hooks.js', import.meta.url, { data: { record } });
