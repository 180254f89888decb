// The vm phases' host-side logic, without QEMU: the QEMU 11 command line, the launch in
// a private mount namespace, the mirror taken from apt's sources, the guest's /init,
// which conformance files and cases run on a vGPU, the screenshot's comparison, and a
// guest that never reached /init (retried once, judged only when it ran).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCanvas, drawTestPattern } from '../../../src/vendors/display/index.js';
import { cacheDir } from '../paths.js';
import { comparePattern } from './compare.js';
import { vmInitScript, vmDevices } from './guest-init.js';
import { inRoot, launchCommand, vmQemuArgs } from './launch.js';
import { debianMirror } from './qemu.js';
import type { BootResult } from '../boot.js';
import { bootWithRetry } from '../crash.js';
import { crashedBootLog } from '../crashed-boot-log.js';
import { vmBootCases, vmPhases } from './run.js';

test('vmQemuArgs: shared memfd RAM, VT-d with interrupt remapping, one vfio-user-pci per socket, paths inside the root', () => {
  const args = vmQemuArgs({
    vmlinuz: `${cacheDir}/kernels/k/boot/vmlinuz`, initrd: `${cacheDir}/images/i.img`,
    devices: [{ socket: `${cacheDir}/vm-run/a.sock`, addr: '05.0' }],
  });
  const line = args.join(' ');
  assert.match(line, /memory-backend-memfd,id=mem,size=2G,share=on/);
  assert.match(line, /q35,memory-backend=mem/);
  assert.match(line, /intel-iommu,intremap=on,caching-mode=on,aw-bits=39/);
  const device = args[args.indexOf('-device', args.indexOf('-device') + 1) + 1]!;
  assert.deepEqual(JSON.parse(device), { driver: 'vfio-user-pci', socket: { path: '/host-cache/vm-run/a.sock', type: 'unix' }, addr: '05.0' });
  assert.equal(args[args.indexOf('-kernel') + 1], '/host-cache/kernels/k/boot/vmlinuz');
  assert.throws(() => inRoot('/etc/passwd'), /not under/);
});

test('launchCommand: unshare without fork (the child is QEMU), mounts only inside the namespace, then chroot', () => {
  const { file, args } = launchCommand('/r', ['-m', '2G']);
  assert.equal(file, 'unshare');
  assert.deepEqual(args.slice(0, 4), ['--mount', '--propagation', 'private', '--']);
  assert.ok(!args.includes('--fork'));
  assert.match(args[6]!, /exec chroot "\$r" qemu-system-x86_64 "\$@"$/);
  assert.deepEqual(args.slice(-3), ['/r', '-m', '2G']);
});

test('debianMirror: the first non-security URI of deb822 or one-line sources', () => {
  assert.equal(debianMirror(['Types: deb\nURIs: http://deb.debian.org/debian-security\n', 'URIs: http://mirror.example/debian/\n']), 'http://mirror.example/debian');
  assert.equal(debianMirror(['deb [arch=amd64] http://ftp.example/debian bookworm main\n']), 'http://ftp.example/debian');
  assert.equal(debianMirror([]), 'http://deb.debian.org/debian');
});

test('vmPhases: display, vfio, and only the VFIO conformance files, with edu-only cases filtered by a positive pattern', () => {
  const phases = vmPhases(['dist/test/conformance/bar.test.js', 'dist/test/conformance/type1.test.js', 'dist/test/conformance/irq.test.js']);
  assert.deepEqual(phases.map((p) => p.name), ['vm-display', 'vm-vfio', 'vm-conformance']);
  const conformance = phases[2]!;
  assert.deepEqual(conformance.files, ['dist/test/conformance/type1.test.js', 'dist/test/conformance/irq.test.js']);
  const pattern = new RegExp(conformance.options![0]!.replace('--test-name-pattern=', ''));
  assert.ok(pattern.test('type1: MAP_DMA READ only returns 0'));
  assert.ok(!pattern.test('type1: MAP_DMA of the device BAR0 mmap (peer to peer) returns 0 and unmaps'));
  assert.ok(!pattern.test('irq: SET_IRQS on ERR (not PCI Express) is EINVAL'));
  assert.ok(!pattern.test('/vgpu/dist/test/conformance/type1.test.js'), 'a file name must not match, or all its cases run');
  assert.deepEqual(vmPhases([]).map((p) => p.name), ['vm-display', 'vm-vfio']);
});

test('vmInitScript: loads both module lists, waits for bochs, binds simgpu, runs phases with their options, echo off', () => {
  const script = vmInitScript([{ name: 'vm-conformance', files: ['a b.js'], options: ['--test-name-pattern=^x'] }]);
  assert.match(script, /stty -F \/dev\/ttyS0 -echo/);
  assert.match(script, /\/etc\/vgpu-modules/);
  assert.match(script, /\/etc\/vgpu-display-modules/);
  assert.ok(script.includes(`echo "${vmDevices.simgpu.ids}" > /sys/bus/pci/drivers/vfio-pci/new_id`));
  assert.ok(script.includes(`phase vm-conformance '--test-name-pattern=^x' 'a b.js'`));
  assert.throws(() => vmInitScript([{ name: 'Bad Name', files: [] }]));
});

test('comparePattern: every pixel equal passes; one pixel off or another size fails with where', () => {
  const c = createCanvas(96, 72);
  drawTestPattern(c);
  const rgba = new Uint8Array(96 * 72 * 4);
  c.pixels.forEach((p, i) => rgba.set([(p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff, 0xff], i * 4));
  assert.deepEqual(comparePattern({ width: 96, height: 72, data: rgba }, 96, 72), { ok: true, detail: '6912 of 6912 pixels equal (96x72)' });
  rgba[(10 * 96 + 5) * 4] ^= 1;
  const one = comparePattern({ width: 96, height: 72, data: rgba }, 96, 72);
  assert.equal(one.ok, false);
  assert.match(one.detail, /^1 of 6912 pixels differ; first \(5, 10\)/);
  assert.equal(comparePattern({ width: 96, height: 72, data: rgba }, 64, 64).ok, false);
});

const vmBoot = (serial: string): BootResult => ({ serial, qemuStderr: '', exitCode: 0, signal: null, timedOut: false, totalSeconds: 10 });
const ranGuest = ['@@VGPU@@ init', '@@VGPU@@ uname 6.12.57+deb12-amd64', '@@VGPU@@ done', ''].join('\n');

test('vm boot: a guest that crashed before /init is retried once, said so, and only the retry is judged', async () => {
  const boots = [vmBoot(crashedBootLog), vmBoot(ranGuest)];
  const said: string[] = [];
  const attempts = await bootWithRetry(async () => boots.shift() ?? assert.fail('a third boot'), (l) => said.push(l));
  assert.match(said[0] ?? '', /never reached \/init .*retrying this boot once/);
  const judged: string[] = [];
  const cases = vmBootCases(attempts, (ran) => { judged.push(ran.serial); return [{ name: 'vm-vfio: simgpu', status: 'pass' }]; });
  assert.deepEqual(judged, [ranGuest], 'the crashed boot is never evaluated');
  assert.deepEqual(cases.map((c) => [c.name, c.status]), [['harness: the guest reaches /init', 'pass'], ['vm-vfio: simgpu', 'pass']]);
  assert.match(cases[0]!.detail ?? '', /on the retry: the first boot crashed before \/init .*Oops: int3/);
});

test('vm boot: two crashed boots are one failure showing the crash, with nothing evaluated', async () => {
  let boots = 0;
  const attempts = await bootWithRetry(async () => { boots++; return vmBoot(crashedBootLog); }, () => undefined);
  const cases = vmBootCases(attempts, () => assert.fail('a guest that never ran is not evaluated'));
  assert.equal(boots, 2);
  assert.deepEqual(cases.map((c) => [c.name, c.status]), [['harness: the guest reaches /init', 'fail']]);
  assert.match(cases[0]!.detail ?? '', /Oops: int3/);
});
