// A short soak on each path (npm run soak runs 10,000 cycles): every cycle's batch
// checks its own result, and between cycles nothing is left: no live vGPU, no mock fd,
// no locked page or mapping, and this process's fds as after the first cycle.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { soak } from './soak.js';

test('soak through the daemon (mock kernel VFIO): 30 cycles leave nothing behind', async () => {
  const samples = await soak({ path: 'daemon', cycles: 30, every: 5 });
  const first = samples.find((s) => s.cycle === 1)!;
  for (const s of samples) {
    assert.deepEqual([s.mockFds, s.lockedPages, s.mapped, s.retained, s.liveVgpus], [0, 0, 0, 0, 0], `cycle ${s.cycle}`);
    if (s.cycle >= 1) assert.equal(s.fds, first.fds, `fds at cycle ${s.cycle}`);
  }
});

test('soak through vgpu serve\'s vfio-user sockets: 15 cycles, the client\'s fds flat', async () => {
  const samples = await soak({ path: 'vfio-user', cycles: 15, every: 5 });
  const first = samples.find((s) => s.cycle === 1)!;
  assert.equal(samples.at(-1)!.cycle, 15);
  for (const s of samples.filter((x) => x.cycle >= 1)) assert.equal(s.fds, first.fds, `fds at cycle ${s.cycle}`);
});
