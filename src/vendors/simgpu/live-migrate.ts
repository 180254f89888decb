// A live migration of a simgpu vGPU between two vfio-user servers, as a VMM makes one
// (what `vgpu migrate` runs). This process is the VMM: it holds the guest's memory
// (memfds it DMA-maps to the server) and runs the guest's driver and its workload
// (workload.ts), the vGPU's user. The move:
//   1. the workload runs on the source; the target vGPU (same type) is opened and the
//      guest's memory allocated and DMA-mapped there (guest.prepareMove)
//   2. pre-copy: the source in PRE_COPY streams its state into the target (RESUMING)
//      while the workload keeps submitting (busy) or sits idle
//   3. stop: the workload pauses (the vCPUs stop), the source goes to STOP_COPY and
//      streams the rest, the target loads it (STOP); the guest memory is copied and the
//      guest switched to the target (its interrupt re-bound); the target runs
//   4. checked byte for byte: the registers, the framebuffer span the workload writes
//      and the guest memory, source at the stop against target after RUNNING; then the
//      workload goes on on the target and the whole framebuffer is checked against
//      what every step wrote
// Downtime is STOP_COPY on the source to RUNNING on the target, guest memory copy included.
import { sysError } from '../../addon/errors.js';
import { migrateDevice, openVfioUserDevice, type DeviceHandle, type MigrateReport } from '../../vfio/index.js';
import { SimGpuGuest, type GuestMove } from './guest.js';
import { SimGpuReg } from './registers.js';
import { SimGpuWorkload } from './workload.js';

export interface LiveMigrationOptions {
  /** The workload keeps submitting during pre-copy (default); false: it idles from the start of the move. */
  busy?: boolean;
  /** Pre-copy rounds (default 4). */
  precopyRounds?: number;
  /** Milliseconds between pre-copy rounds, the user working meanwhile (default 20). */
  roundDelayMs?: number;
  /** Workload steps before the move (default 8) and after it (default 8). */
  stepsBefore?: number;
  stepsAfter?: number;
  log?: (line: string) => void;
}

export interface LiveMigrationReport extends MigrateReport {
  busy: boolean;
  /** Guest memory copied at the stop. */
  guestMemoryBytes: number;
  stepsBefore: number;
  stepsDuring: number;
  stepsAfter: number;
  /** Byte-for-byte comparisons of the source at the stop and the target after RUNNING. */
  same: { registers: boolean; framebuffer: boolean; guestMemory: boolean };
  /** The guest's and the comparisons' failures; empty when the move kept everything. */
  failures: string[];
}

/** Every readable register of BAR0 (DOORBELL reads 0). */
function registers(handle: DeviceHandle): Uint8Array {
  const bar0 = handle.device.bar(0);
  const out = new Uint8Array(SimGpuReg.PROGRESS + 4);
  const dv = new DataView(out.buffer);
  for (let at = 0; at <= SimGpuReg.PROGRESS; at += 4) dv.setUint32(at, bar0.read32(at), true);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves the simgpu vGPU served at `sourceSocket` to the one at `targetSocket` (a vGPU of
 * the same type, not yet in use) with a workload running, and checks the result. The
 * source must have no other client. On failure the target's copies are freed, the
 * source device is back in RUNNING, and the error passes on; both handles are closed.
 */
export function liveMigrateSimGpu(sourceSocket: string, targetSocket: string, options: LiveMigrationOptions = {}): Promise<LiveMigrationReport> {
  return liveMigrate(() => openVfioUserDevice(sourceSocket), () => openVfioUserDevice(targetSocket), options);
}

/**
 * The same over any transport: `openSource` and `openTarget` open the two vGPUs (over
 * vfio-user, or VFIO on one fd layer); each is opened once, the target after the
 * workload's first steps.
 */
export async function liveMigrate(openSource: () => DeviceHandle, openTarget: () => DeviceHandle, options: LiveMigrationOptions = {}): Promise<LiveMigrationReport> {
  const busy = options.busy ?? true;
  const log = options.log ?? ((): void => undefined);
  const guest = SimGpuGuest.attach(openSource());
  let target: DeviceHandle | undefined;
  let move: GuestMove | undefined;
  try {
    const workload = new SimGpuWorkload(guest);
    await workload.run(options.stepsBefore ?? 8);
    const stepsBefore = workload.steps;
    log(`source ${guest.device.name}: ${stepsBefore} workload steps done`);
    target = openTarget();
    const source = guest.handle;
    if (target.device.bar(0).read32(SimGpuReg.TYPE_ID) !== guest.info.typeId) {
      throw sysError('EINVAL', 'migrate', undefined, 'the target vGPU is of another type than the source');
    }
    move = guest.prepareMove(target);
    if (busy) workload.start();
    let atStop: { registers: Uint8Array; framebuffer: Uint8Array; memory: Uint8Array } | undefined;
    let guestMemoryBytes = 0;
    let stepsAtStop = 0;
    const report = await migrateDevice(source.device, target.device, {
      precopyRounds: options.precopyRounds ?? 4,
      betweenRounds: () => delay(options.roundDelayMs ?? 20),
      pause: async () => {
        await workload.stop();
        stepsAtStop = workload.steps;
        log(`stopping the source after ${stepsAtStop - stepsBefore} steps during pre-copy`);
      },
      beforeResume: () => {
        atStop = {
          registers: registers(source),
          framebuffer: source.device.bar(1).read(0, workload.framebufferSpan),
          memory: guest.memorySnapshot(),
        };
        guestMemoryBytes = move!.complete();
      },
    });
    move = undefined;
    source.close();
    const now = { registers: registers(guest.handle), framebuffer: guest.device.bar(1).read(0, workload.framebufferSpan), memory: guest.memorySnapshot() };
    const same = {
      registers: sameBytes(atStop!.registers, now.registers),
      framebuffer: sameBytes(atStop!.framebuffer, now.framebuffer),
      guestMemory: sameBytes(atStop!.memory, now.memory),
    };
    log(`target ${target.device.name} running: downtime ${report.downtimeMs.toFixed(1)} ms, ` +
      `${report.precopyBytes} bytes pre-copy, ${report.stopCopyBytes} at stop-copy, ${guestMemoryBytes} of guest memory`);
    await workload.run(options.stepsAfter ?? 8);
    const failures = [...workload.failures];
    for (const [what, ok] of Object.entries(same)) if (!ok) failures.push(`the ${what} differ between the source at the stop and the target`);
    const badSlots = workload.checkFramebuffer((offset, length) => guest.device.bar(1).read(offset, length));
    if (badSlots.length) failures.push(`framebuffer slots ${badSlots.join(', ')} do not hold what the workload wrote`);
    return {
      ...report, busy, guestMemoryBytes, stepsBefore, stepsDuring: stepsAtStop - stepsBefore,
      stepsAfter: workload.steps - stepsAtStop, same, failures,
    };
  } finally {
    move?.abort();
    guest.close();
    if (target && guest.handle !== target) target.close();
  }
}
