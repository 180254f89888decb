// The real-kernel harness's own logic, on the host and without QEMU: TAP parsing, the
// guest's markers, IOMMU fault attribution, outcome parity, options and the guest's
// /init. (The harness itself runs with `npm run test:kernel`.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTap } from './tap.js';
import { parseSerial, fact } from './markers.js';
import { checkFaults, outsidePhases } from './faults.js';
import { parseOutcomes, canonicalJson } from './outcomes.js';
import { compareOutcomes, paritySummary, parityTable } from './parity.js';
import { parseOptions } from './options.js';
import { initScript } from './guest-init.js';
import { evaluateBoot } from './evaluate.js';
import type { BootResult } from './boot.js';
import { bootCase, bootWithRetry, crashBeforeInit, parityNotComputed } from './crash.js';
import { crashedBootLog } from './crashed-boot-log.js';
import { guestSamplePath, headerDependencies, relocateHeadersMakefile } from './mdev-samples.js';

const nodeTap = `TAP version 13
# stray output
# Subtest: suite A
    # Subtest: passes
    ok 1 - passes
      ---
      duration_ms: 0.45
      ...
    # Subtest: fails
    not ok 2 - fails
      ---
      duration_ms: 0.77
      location: '/t/a.test.js:5:3'
      failureType: 'testCodeFailure'
      error: |-
        Expected values to be strictly equal:

        1 !== 2
      code: 'ERR_ASSERTION'
      ...
    # Subtest: skipped
    ok 3 - skipped # SKIP no device
      ---
      duration_ms: 0.1
      ...
    1..3
not ok 1 - suite A
  ---
  type: 'suite'
  failureType: 'subtestsFailed'
  error: '1 subtest failed'
  ...
# Subtest: top level
    # Subtest: sub \\# hash \\\\ slash
    ok 1 - sub \\# hash \\\\ slash
      ---
      duration_ms: 0.08
      ...
    1..1
ok 2 - top level
  ---
  duration_ms: 0.29
  ...
# Subtest: with a failing hook
    # Subtest: inner
    ok 1 - inner
      ---
      duration_ms: 0.1
      ...
    1..1
not ok 3 - with a failing hook
  ---
  failureType: 'hookFailed'
  error: 'after hook threw'
  ...
# Subtest: later
not ok 4 - later # TODO not yet
  ---
  duration_ms: 0.7
  ...
1..4
# tests 7
# suites 1
# pass 4
# fail 2
# cancelled 0
# skipped 1
# todo 1
# duration_ms 143.1
`;

test('parseTap: leaves by full path, with status, directive and error', () => {
  const r = parseTap(nodeTap.replace(/\n/g, '\r\n'));
  assert.deepEqual(r.cases.map((c) => [c.path.join(' > '), c.status]), [
    ['suite A > passes', 'pass'],
    ['suite A > fails', 'fail'],
    ['suite A > skipped', 'skip'],
    ['top level > sub # hash \\ slash', 'pass'],
    ['with a failing hook > inner', 'pass'],
    ['with a failing hook', 'fail'],
    ['later', 'todo'],
  ]);
  assert.equal(r.cases[1]?.detail, 'Expected values to be strictly equal:\n\n1 !== 2\nat /t/a.test.js:5:3');
  assert.equal(r.cases[2]?.detail, 'no device');
  assert.equal(r.cases[5]?.detail, 'after hook threw');
  assert.equal(r.cases[6]?.detail, 'not yet');
  assert.deepEqual(r.summary, { tests: 7, pass: 4, fail: 2, cancelled: 0, skipped: 1, todo: 1 });
  assert.deepEqual(r.comments, ['stray output']);
});

test('parseTap: a file that failed to load is one failing case named by its path', () => {
  const r = parseTap([
    'TAP version 13',
    '# Error [ERR_MODULE_NOT_FOUND]: Cannot find module',
    '# Subtest: /vgpu/dist/test/e2e/edu.test.js',
    'not ok 1 - /vgpu/dist/test/e2e/edu.test.js',
    '  ---',
    "  location: '/vgpu/dist/test/e2e/edu.test.js:1:1'",
    "  error: 'test failed'",
    '  ...',
    '1..1',
    '# tests 1',
    '# fail 1',
  ].join('\n'));
  assert.deepEqual(r.cases, [{
    path: ['/vgpu/dist/test/e2e/edu.test.js'], status: 'fail',
    detail: 'test failed\nat /vgpu/dist/test/e2e/edu.test.js:1:1',
  }]);
  assert.deepEqual(r.summary, { tests: 1, fail: 1 });
});

test('parseTap: output cut off before the summary has no summary', () => {
  const r = parseTap('TAP version 13\n# Subtest: a\nok 1 - a\n');
  assert.equal(r.cases.length, 1);
  assert.equal(r.summary.tests, undefined);
});

const serialText = [
  '[    0.1] early boot line',
  '@@VGPU@@ init',
  '@@VGPU@@ uname 6.1.0-56-amd64',
  '@@VGPU@@ device 0000:00:04.0 group 1 driver vfio-pci',
  '@@VGPU@@ begin tap:environment',
  'TAP version 13',
  'ok 1 - a',
  'no newline at the end@@VGPU@@ end tap:environment rc=0',
  '@@VGPU@@ begin tap:e2e',
  'TAP version 13',
].join('\r\n');

test('parseSerial: facts, sections with rc, a marker after unterminated output, a cut-off section', () => {
  const log = parseSerial(serialText);
  assert.deepEqual(log.facts, [['init', ''], ['uname', '6.1.0-56-amd64'], ['device', '0000:00:04.0 group 1 driver vfio-pci']]);
  assert.equal(fact(log, 'uname'), '6.1.0-56-amd64');
  assert.equal(fact(log, 'setup-error'), undefined);
  assert.deepEqual(log.sections.get('tap:environment'), {
    lines: ['TAP version 13', 'ok 1 - a', 'no newline at the end'], complete: true, rc: 0,
  });
  assert.deepEqual(log.sections.get('tap:e2e'), { lines: ['TAP version 13'], complete: false });
  assert.equal(log.done, false);
});

const dmarWrite = '[   12.5] DMAR: [DMA Write NO_PASID] Request device [00:04.0] fault addr 0x400000 [fault reason 0x05] PTE Write access is not set';

test('checkFaults: attributes records to phases; status lines and "Default domain" are not faults', () => {
  const dmesg = [
    '[    0.8] iommu: Default domain type: Translated',
    '[    4.4] VGPU-MARK phase-begin conformance',
    '[    9.0] VGPU-MARK phase-end conformance',
    '[   12.0] VGPU-MARK phase-begin e2e',
    '[   12.5] DMAR: DRHD: handling fault status reg 2',
    dmarWrite,
    '[   14.0] VGPU-MARK phase-end e2e',
  ];
  const r = checkFaults(dmesg, { e2e: 1 }, '00:04.0');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.lines, [dmesg[4], dmarWrite]);
  assert.deepEqual([...r.perPhase], [['e2e', [dmarWrite]]]);
});

test('checkFaults: a fault outside its budget, outside any phase, or from another device fails', () => {
  const foreign = dmarWrite.replace('00:04.0', '00:02.0');
  const r = checkFaults([
    dmarWrite,
    '[1] VGPU-MARK phase-begin conformance', dmarWrite, '[2] VGPU-MARK phase-end conformance',
    '[3] VGPU-MARK phase-begin e2e', dmarWrite, foreign, '[4] VGPU-MARK phase-end e2e',
  ], { e2e: 1 }, '00:04.0');
  assert.deepEqual(r.problems, [
    `1 fault(s) in ${outsidePhases}, 0 expected at most`,
    '1 fault(s) in conformance, 0 expected at most',
    '1 fault(s) from another device in e2e',
    '2 fault(s) in e2e, 1 expected at most',
  ]);
});

test('parseOutcomes and canonicalJson: records, invalid lines, key order', () => {
  const r = parseOutcomes('{"case":"a","observed":{"ret":0}}\n\nnot json\n{"observed":1}\n');
  assert.deepEqual(r.outcomes, [{ case: 'a', observed: { ret: 0 } }]);
  assert.deepEqual(r.invalid, ['line 3: not json', 'line 4: {"observed":1}']);
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
});

test('compareOutcomes: identical, declared, differing, one-sided and repeated cases', () => {
  const mock = [
    { case: 'same', observed: { errno: 'EINVAL', x: 1 } },
    { case: 'dep', observed: { errno: 'EINVAL' }, versionDependent: 'EBADFD on 6.12' },
    { case: 'diff', observed: { ret: 0 } },
    { case: 'mock only', observed: 1 },
    { case: 'twice', observed: 1 },
    { case: 'twice', observed: 2 },
  ];
  const real = [
    { case: 'same', observed: { x: 1, errno: 'EINVAL' } },
    { case: 'dep', observed: { errno: 'EBADFD' }, versionDependent: 'EBADFD on 6.12' },
    { case: 'diff', observed: { errno: 'EPERM' } },
    { case: 'real only', observed: 1 },
    { case: 'twice', observed: 1 },
    { case: 'twice', observed: 3 },
  ];
  const p = compareOutcomes(mock, real);
  assert.deepEqual(p.rows.map((r) => [r.case, r.status]), [
    ['same', 'identical'], ['dep', 'declared'], ['diff', 'differs'], ['real only', 'only-kernel'],
    ['twice', 'identical'], ['twice #2', 'differs'], ['mock only', 'only-mock'],
  ]);
  assert.equal(p.rows[1]?.reason, 'EBADFD on 6.12');
  assert.deepEqual([p.identical, p.declared, p.differing], [2, 1, 4]);
  assert.equal(p.versionDependent, 1);
  assert.equal(paritySummary('6.12.1', p),
    'parity 6.12.1: 7 cases, 2 identical (1 declared version-dependent, 1 of them differing as allowed), 4 differing');
  assert.equal(paritySummary('6.1', compareOutcomes(mock.slice(0, 2), mock.slice(0, 2))),
    'parity 6.1: 2 cases, 2 identical (1 declared version-dependent), 0 differing');
  const md = parityTable('T', p);
  assert.match(md, /\| diff \| `\{"ret":0\}` \| `\{"errno":"EPERM"\}` \| differs \|/);
  assert.match(md, /\| dep \| `\{"errno":"EINVAL"\}` \| `\{"errno":"EBADFD"\}` \| declared \| EBADFD on 6.12 \|/);
  assert.match(md, /\n7 cases, 2 identical \(1 declared version-dependent, 1 of them differing as allowed\), 4 differing\.\n/);
});

test('parseOptions: defaults, one kernel, timeout, and bad input', () => {
  assert.deepEqual(parseOptions([]), { kernels: ['6.1', '6.12'], timeoutSeconds: 600, parity: true, echo: false, edu: true, vm: true });
  assert.deepEqual(parseOptions(['--kernel=6.12', '--timeout=90', '--no-parity', '--echo']),
    { kernels: ['6.12'], timeoutSeconds: 90, parity: false, echo: true, edu: true, vm: true });
  assert.deepEqual([parseOptions(['--no-vm']).vm, parseOptions(['--vm-only']).edu], [false, false]);
  assert.throws(() => parseOptions(['--kernel=5.10']), /unknown kernel 5\.10/);
  assert.throws(() => parseOptions(['--timeout=0']), /bad option --timeout=0/);
  assert.throws(() => parseOptions(['--frobnicate']), /bad option --frobnicate/);
});

test('initScript: runs each phase between markers and quotes file names', () => {
  const s = initScript([{ name: 'e2e', files: ["dist/test/e2e/it's.test.js"] }]);
  assert.ok(s.startsWith('#!/bin/sh\n'));
  assert.match(s, /\nphase e2e 'dist\/test\/e2e\/it'\\''s\.test\.js'\n/);
  assert.match(s, /echo "1234 11e8" > \/sys\/bus\/pci\/drivers\/vfio-pci\/new_id/);
  assert.match(s, /mark begin tap:\$name\n\s+node --test --test-reporter=tap/);
  assert.throws(() => initScript([{ name: 'two words', files: [] }]), /bad phase name/);
});

function bootOf(serial: string, over: Partial<BootResult> = {}): BootResult {
  return { serial, qemuStderr: '', exitCode: 0, signal: null, timedOut: false, totalSeconds: 10, ...over };
}

const want = { release: '6.1.0-56-amd64', phases: [{ name: 'e2e', files: ['x'] }], allowedFaults: { e2e: 1 }, faultDevice: '00:04.0' };

const goodRun = [
  '@@VGPU@@ init', '@@VGPU@@ uname 6.1.0-56-amd64', '@@VGPU@@ device 0000:00:04.0 group 1 driver vfio-pci',
  '@@VGPU@@ begin tap:e2e', 'TAP version 13', '# Subtest: dma', 'ok 1 - dma', '1..1', '# tests 1', '# pass 1', '# fail 0',
  '@@VGPU@@ end tap:e2e rc=0', '@@VGPU@@ begin stderr:e2e', '@@VGPU@@ end stderr:e2e',
  '@@VGPU@@ begin outcomes', '{"case":"c","observed":1}', '@@VGPU@@ end outcomes',
  '@@VGPU@@ begin dmesg', '[1] VGPU-MARK phase-begin e2e', dmarWrite, '[2] VGPU-MARK phase-end e2e', '@@VGPU@@ end dmesg',
  '@@VGPU@@ done',
].join('\n');

test('evaluateBoot: a good run passes every case and keeps the outcomes', () => {
  const e = evaluateBoot(bootOf(goodRun), want);
  assert.deepEqual(e.cases.filter((c) => c.status !== 'pass'), []);
  assert.ok(e.cases.some((c) => c.name === 'e2e: dma'));
  assert.deepEqual(e.outcomes?.outcomes, [{ case: 'c', observed: 1 }]);
  assert.deepEqual(e.faults?.lines, [dmarWrite]);
});

test('evaluateBoot: a guest cut off mid-run fails; so does a wrong kernel or a timeout', () => {
  const cut = goodRun.slice(0, goodRun.indexOf('# tests'));
  const e = evaluateBoot(bootOf(cut, { timedOut: true, exitCode: null, signal: 'SIGKILL' }), { ...want, release: '6.12.1' });
  assert.deepEqual(e.cases.filter((c) => c.status === 'fail').map((c) => c.name), [
    'harness: the guest finishes before the timeout',
    'harness: the guest runs /init to its end',
    'harness: uname -r is 6.12.1',
    "harness: e2e's test run is complete",
    'harness: the guest prints its kernel log',
  ]);
});

test('evaluateBoot: a setup error, or a guest that never binds edu, fails the setup check', () => {
  const failed = (serial: string): Array<[string, string | undefined]> => evaluateBoot(bootOf(serial), want).cases
    .filter((c) => c.name === 'harness: the guest loads VFIO and binds edu to vfio-pci' && c.status === 'fail')
    .map((c) => [c.name, c.detail]);
  assert.deepEqual(failed(goodRun), []);
  assert.deepEqual(failed(goodRun.replace(/@@VGPU@@ device .*\n/, '@@VGPU@@ setup-error insmod /lib/x.ko\n')),
    [['harness: the guest loads VFIO and binds edu to vfio-pci', 'insmod /lib/x.ko']]);
  assert.deepEqual(failed('@@VGPU@@ init\n'),
    [['harness: the guest loads VFIO and binds edu to vfio-pci', 'the guest did not get that far']]);
});

test('evaluateBoot: QEMU failing after the guest finished fails the run', () => {
  const e = evaluateBoot(bootOf(goodRun, { exitCode: 1, qemuStderr: 'qemu-system-x86_64: edu: DMA range 0x40000-0x41000 out of bounds' }), want);
  assert.deepEqual(e.cases.filter((c) => c.status === 'fail').map((c) => [c.name, c.detail]), [
    ['harness: QEMU exits cleanly', 'exit 1\nqemu-system-x86_64: edu: DMA range 0x40000-0x41000 out of bounds'],
  ]);
});

test('evaluateBoot: a non-zero runner exit with no failing test is a failure', () => {
  const e = evaluateBoot(bootOf(goodRun.replace('rc=0', 'rc=7')), want);
  assert.deepEqual(e.cases.filter((c) => c.status === 'fail').map((c) => [c.name, c.detail]), [
    ["harness: e2e's test run exits 0", 'node --test exited 7'],
  ]);
});

test('crashBeforeInit: a console without /init\'s markers is a crash, shown from its oops; a guest that ran is not', () => {
  const crash = crashBeforeInit(bootOf(crashedBootLog, { exitCode: 0 }));
  assert.ok(crash);
  assert.match(crash.excerpt[2] ?? '', /Oops: int3/);
  assert.ok(crash.excerpt.some((l) => l.includes('RIP: 0010:hrtimer_start_range_ns')));
  assert.ok(crash.excerpt.every((l) => !l.includes('\r')));
  assert.equal(crashBeforeInit(bootOf(goodRun)), undefined);
  assert.equal(crashBeforeInit(bootOf(goodRun.slice(0, goodRun.indexOf('# tests')))), undefined, 'died mid-run: a test failure, not a boot crash');
  assert.equal(crashBeforeInit(bootOf('', { spawnError: 'spawn qemu-system-x86_64 ENOENT' })), undefined);
  assert.deepEqual(crashBeforeInit(bootOf('', { timedOut: true }))?.excerpt, ['(killed at the timeout)']);
});

test('bootWithRetry: a crashed boot is retried once and said so; the retry\'s results stand', async () => {
  const boots = [bootOf(crashedBootLog), bootOf(goodRun)];
  const said: string[] = [];
  const attempts = await bootWithRetry(async () => boots.shift() ?? assert.fail('a third boot'), (l) => said.push(l));
  assert.equal(attempts.result.serial, goodRun);
  assert.equal(attempts.crash, undefined);
  assert.equal(said[0], 'the guest never reached /init (its kernel crashed); retrying this boot once. Its console:');
  assert.ok(said.some((l) => l.includes('Oops: int3')));
  assert.equal(said.at(-1), 'the retried boot reached /init; its results stand');
  const c = bootCase(attempts);
  assert.equal(c.status, 'pass');
  assert.match(c.detail ?? '', /^on the retry: the first boot crashed before \/init \(.*Oops: int3/);
  // Its evaluation is the retried guest's: no failure comes from the crashed boot.
  assert.deepEqual(evaluateBoot(attempts.result, want).cases.filter((x) => x.status === 'fail'), []);
});

test('bootWithRetry: a second crash fails once, with the crash, and parity is not computed', async () => {
  let count = 0;
  const said: string[] = [];
  const attempts = await bootWithRetry(async () => { count++; return bootOf(crashedBootLog); }, (l) => said.push(l));
  assert.equal(count, 2);
  assert.ok(attempts.crash);
  assert.equal(said.at(-1), 'the retried boot never reached /init either: failing');
  const c = bootCase(attempts);
  assert.equal(c.status, 'fail');
  assert.match(c.detail ?? '', /^the kernel crashed before \/init on the boot and on its retry; the last crash:\n.*\n.*\n.*Oops: int3/);
  assert.equal(parityNotComputed().status, 'skip');
});

test('bootWithRetry: a guest that reached /init is booted once, whatever its tests did', async () => {
  let count = 0;
  const attempts = await bootWithRetry(async () => { count++; return bootOf(goodRun.replace('rc=0', 'rc=7')); }, () => assert.fail('nothing to say'));
  assert.deepEqual([count, attempts.retriedAfter, bootCase(attempts)], [1, undefined, { name: 'harness: the guest reaches /init', status: 'pass' }]);
});

test('evaluateBoot: the mdev samples check passes when /sys/class/mdev_bus lists every parent', () => {
  const mdevCase = (serial: string): Array<[string, string | undefined]> =>
    evaluateBoot(bootOf(serial), { ...want, mdevParents: ['mtty', 'mdpy', 'mbochs'] }).cases
      .filter((c) => c.name.startsWith("harness: the guest loads the kernel's mdev samples"))
      .map((c) => [c.status, c.detail]);
  const withMdev = (line: string): string => goodRun.replace('@@VGPU@@ device', `${line}\n@@VGPU@@ device`);
  assert.deepEqual(mdevCase(withMdev('@@VGPU@@ mdev mbochs mdpy mtty')), [['pass', undefined]]);
  assert.deepEqual(mdevCase(withMdev('@@VGPU@@ mdev mdpy mtty')), [['fail', '/sys/class/mdev_bus lists mdpy mtty']]);
  assert.deepEqual(mdevCase(withMdev('@@VGPU@@ mdev-error insmod /lib/modules/r/extra/mbochs.ko')),
    [['fail', 'insmod /lib/modules/r/extra/mbochs.ko']]);
  // Without parents to expect (no samples in the image), there is no such case.
  assert.equal(evaluateBoot(bootOf(goodRun), want).cases.some((c) => c.name.includes('mdev')), false);
});

test('initScript: loads the mdev list after the VFIO modules and reports the parents', () => {
  const s = initScript([{ name: 'e2e', files: ['x'] }]);
  const vfio = s.indexOf('$(cat /etc/vgpu-modules)');
  const mdev = s.indexOf('$(cat /etc/vgpu-mdev-modules)');
  assert.ok(vfio > 0 && mdev > vfio);
  assert.match(s, /mark mdev \$\(ls \/sys\/class\/mdev_bus\)/);
});

test('mdev samples: the headers\' dependencies, the relocated Makefile, the guest path', () => {
  assert.deepEqual(headerDependencies('linux-base (>= 4.12~), linux-headers-6.12.118+deb12-common (= 6.12.118-1~deb12u1), ' +
    'linux-image-6.12.118+deb12-amd64 (= 6.12.118-1~deb12u1) | linux-image-6.12.118+deb12-amd64-unsigned (= 6.12.118-1~deb12u1), ' +
    'linux-kbuild-6.12.118+deb12, gcc-12'), ['linux-headers-6.12.118+deb12-common', 'linux-kbuild-6.12.118+deb12']);
  assert.deepEqual(headerDependencies('linux-headers-6.1.0-57-common (= 6.1.192-3), linux-kbuild-6.1 (>= 6.1.192-3), linux-compiler-gcc-12-x86'),
    ['linux-headers-6.1.0-57-common', 'linux-kbuild-6.1']);
  assert.throws(() => headerDependencies('gcc-12'), /no -common or linux-kbuild/);
  assert.equal(relocateHeadersMakefile('include /usr/src/linux-headers-6.1.0-57-common/Makefile\n', '/c/tree'),
    'include /c/tree/usr/src/linux-headers-6.1.0-57-common/Makefile\n');
  assert.throws(() => relocateHeadersMakefile('all:\n', '/c'), /includes no \/usr\/src\//);
  assert.equal(guestSamplePath('6.1.0-57-amd64', 'mtty'), 'lib/modules/6.1.0-57-amd64/extra/mtty.ko');
});
