// The vm phases for one kernel: QEMU 11 (vm/qemu.ts) attaches two vGPUs that `vgpu
// serve` serves over vfio-user on this host (display-xga at 00:05.0, simgpu-0Q at
// 00:06.0); the guest runs vm-display (bochs, EDID, mode, fbcon, the pattern compared
// with the host's screenshot), vm-vfio (simgpu through the guest's own VFIO) and
// vm-conformance (the conformance suite on the simgpu vGPU). Every case comes back as a
// ReportCase; the console picture, the pattern's screenshot, the server's log and the
// serial log stay in the cache. A guest whose kernel died before /init is retried once
// (crash.ts), as the edu boots are; a second such boot is one failure showing the crash,
// and nothing is evaluated from a guest that never ran.
import { join } from 'node:path';
import type { Layer } from '../cpio.js';
import type { ExtractedKernel } from '../fetch.js';
import { guestImage } from '../image.js';
import type { GuestPhase } from '../guest-init.js';
import { evaluateBoot, type Evaluation, type ReportCase } from '../evaluate.js';
import { fact } from '../markers.js';
import { cacheDir } from '../paths.js';
import { log, seconds } from '../log.js';
import type { BootResult } from '../boot.js';
import { bootCase, bootWithRetry, type BootAttempts } from '../crash.js';
import { fetchVmQemu } from './qemu.js';
import { bootVm } from './launch.js';
import { vmLayer } from './image.js';
import { vmDevices } from './guest-init.js';
import { displayUuid, simgpuUuid, startVmServer } from './server.js';
import { comparePatternPng } from './compare.js';

export interface VmRun {
  cases: ReportCase[];
  result?: BootResult;
  evaluation?: Evaluation;
  logPath: string;
  /** Figures the guest reported (name -> value). */
  figures: Map<string, string>;
}

/**
 * The conformance files about VFIO itself (container, group, type1, irq), which apply to
 * any PCI function bound to vfio-pci; bar, config and device check edu's own registers,
 * identity and regions, which a vGPU does not share.
 */
const vgpuConformance = /\/(container|group|type1|irq)\.test\.js$/;
/** Cases of those files that still name one of edu's facts: skipped, and so listed as skipped. */
const eduOnlyCases = ['peer to peer', 'not PCI Express'];

export function vmPhases(conformance: readonly string[]): GuestPhase[] {
  const phases: GuestPhase[] = [
    { name: 'vm-display', files: ['dist/test/kernel/guest/vm-display.js'] },
    { name: 'vm-vfio', files: ['dist/test/kernel/guest/vm-vfio.js'] },
  ];
  const files = conformance.filter((f) => vgpuConformance.test(f));
  if (files.length) {
    // A positive pattern: node runs every case of a file whose own name matches, and a
    // file's path never starts with an area name.
    phases.push({ name: 'vm-conformance', files, options: [`--test-name-pattern=^(container|group|type1|irq): (?!.*(${eduOnlyCases.join('|')}))`] });
  }
  return phases;
}

const harness = (name: string, ok: boolean, detail?: string): ReportCase =>
  ({ name: `harness: ${name}`, status: ok ? 'pass' : 'fail', ...(detail ? { detail } : {}) });

/**
 * The cases of the vm boot: the boot's own case (passing, or passing on a retry), then what
 * `judge` makes of the guest's run; for a guest that never reached /init on either boot,
 * that boot case alone, failing with the crash: it ran no test, so none is reported failed.
 */
export function vmBootCases(attempts: BootAttempts, judge: (result: BootResult) => ReportCase[]): ReportCase[] {
  if (attempts.crash) return [bootCase(attempts)];
  return [bootCase(attempts), ...judge(attempts.result)];
}

export async function runVm(kernel: ExtractedKernel, busybox: string, project: Layer, conformance: readonly string[],
  options: { timeoutSeconds: number; echo: boolean }): Promise<VmRun> {
  const series = kernel.series;
  const logPath = join(cacheDir, `vm-serial-${kernel.release}.log`);
  const serverLog = join(cacheDir, `vm-server-${kernel.release}.log`);
  const consolePng = join(cacheDir, `vm-console-${kernel.release}.png`);
  const patternPng = join(cacheDir, `vm-pattern-${kernel.release}.png`);
  const figures = new Map<string, string>();
  const cases: ReportCase[] = [];

  const start = performance.now();
  const qemu = await fetchVmQemu();
  log(`vm ${series}: ${qemu.version} from ${qemu.root} (${qemu.built ? `built in ${seconds(start)}` : 'cached'})`);
  const phases = vmPhases(conformance);
  const image = await guestImage(kernel, busybox, project, [await vmLayer(kernel, phases)], 'initrd-vm');

  const server = await startVmServer(join(cacheDir, 'vm-run'));
  let result: BootResult | undefined;
  try {
    let patternCase: ReportCase = harness('the host\'s screenshot equals the guest\'s pattern', false, 'the guest never asked for it');
    let consoleCase: ReportCase = harness(`the console's picture is saved (${consolePng})`, false, 'the guest never asked for it');
    const pending: Promise<void>[] = [];
    log(`vm ${series}: booting ${kernel.release} on QEMU 11 with the display and simgpu vGPUs (console in ${logPath})`);
    const attempts = await bootWithRetry(() => bootVm({
      root: qemu.root, vmlinuz: kernel.vmlinuz, initrd: image.initrd, logPath,
      timeoutSeconds: options.timeoutSeconds, echo: options.echo,
      devices: [
        { socket: server.socketOf(displayUuid), addr: vmDevices.display.addr },
        { socket: server.socketOf(simgpuUuid), addr: vmDevices.simgpu.addr },
      ],
      onFact: (word, text, reply) => {
        if (word === 'figure') {
          const [name = '', value = ''] = text.split(/\s+/);
          figures.set(name, value);
        }
        if (word !== 'ask') return;
        const [what = '', arg = ''] = text.split(/\s+/);
        pending.push((async () => {
          if (what === 'console') {
            const shot = await server.screenshot(displayUuid, consolePng);
            consoleCase = harness(`the console's picture is saved (${consolePng})`, shot.ok, shot.output);
            reply(`answer console ${shot.ok ? 'ok' : 'fail'} ${shot.output}`);
          } else if (what === 'pattern') {
            const [w, h] = arg.split('x').map(Number) as [number, number];
            const shot = await server.screenshot(displayUuid, patternPng);
            const cmp = shot.ok ? comparePatternPng(patternPng, w, h) : { ok: false, detail: shot.output };
            patternCase = harness(`\`vgpu screenshot\` equals the guest's pattern, every pixel (${patternPng})`, cmp.ok, cmp.detail);
            if (cmp.ok) patternCase.detail = cmp.detail;
            reply(`answer pattern ${cmp.ok ? 'ok' : 'fail'} ${cmp.detail}`);
          } else {
            reply(`answer ${what} fail unknown request`);
          }
        })().catch((e: unknown) => reply(`answer ${what} fail ${String(e)}`)));
      },
    }), (line) => log(`vm ${series}: ${line}`));
    result = attempts.result;
    await Promise.all(pending);
    let evaluation: Evaluation | undefined;
    cases.push(...vmBootCases(attempts, (ran) => {
      evaluation = evaluateBoot(ran, {
        release: kernel.release, phases, allowedFaults: {}, faultDevice: `00:${vmDevices.simgpu.addr}`,
        deviceLabel: 'the simgpu vGPU',
      });
      const display = fact(evaluation.serial, 'display');
      return [
        harness('QEMU 11 attaches the display vGPU over vfio-user and bochs binds it',
          display !== undefined && /driver bochs/.test(display), fact(evaluation.serial, 'setup-error') ?? display ?? 'the guest did not get that far'),
        ...evaluation.cases, consoleCase, patternCase,
      ];
    }));
    return { cases, result, ...(evaluation ? { evaluation } : {}), logPath, figures };
  } finally {
    await server.stop(serverLog);
    log(`vm ${series}: server log in ${serverLog}`);
  }
}
