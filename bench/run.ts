// `npm run bench`: runs every bench module in order (or only those named on the
// command line: `node dist/bench/run.js ioctl`). A bench module exports
// `async function run(): Promise<void>` and prints through bench/report.ts.
// To add one, add a line to `benches`.
const benches: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  ioctl: () => import('./ioctl.js'),
  region: () => import('./region.js'),
  'bulk-copy': () => import('./bulk-copy.js'),
  'dma-tracker': () => import('./dma-tracker.js'),
  'vgpu-lifecycle': () => import('./vgpu-lifecycle.js'),
  'vgpu-dispatch': () => import('./vgpu-dispatch.js'),
  'edu-mediated': () => import('./edu-mediated.js'),
  'vfio-user': () => import('./vfio-user.js'),
  'cli-start': () => import('./cli-start.js'),
  migrate: () => import('./migrate.js'),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length > 0) {
  console.error(`unknown bench: ${unknown.join(', ')} (have: ${Object.keys(benches).join(', ')})`);
  process.exit(2);
}
for (const [name, load] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  try {
    await (await load()).run();
  } catch (err) {
    // One broken bench (no `cc`, no device) must not hide the others' figures.
    console.error(`bench ${name} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
