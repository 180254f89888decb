// `vgpu migrate -u UUID --to SOCKET`: moves a running simgpu vGPU from the daemon at
// --socket to the daemon at SOCKET (same machine), as a VMM does, this command being
// the VMM: it attaches to the vGPU over vfio-user with guest memory in memfds and runs a
// simgpu workload on it (the vGPU's user), starts a vGPU of the same parent and type
// under the same UUID on the target, live-migrates (pre-copy while the workload runs,
// stop-copy, resume), lets the workload go on on the target, checks registers,
// framebuffer and guest memory byte for byte, and then stops the source vGPU. On
// failure the target's vGPU is stopped and the source's stays, running its state.
import { isSysError, sysError } from '../../addon/errors.js';
import type { HostApi, LiveDevice } from '../../host/api.js';
import { liveMigrateSimGpu, type LiveMigrationReport } from '../../vendors/simgpu/live-migrate.js';
import { stringValue, type Parsed } from '../args.js';
import { noDaemonError, type Cli } from '../context.js';
import { UsageError } from '../usage.js';

function count(values: Parsed['values'], name: string, fallback: number): number {
  const text = stringValue(values, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError(`--${name} must be an integer from 0 to 1000`, 'migrate');
  return n;
}

async function liveDevice(host: HostApi, uuid: string, where: string): Promise<LiveDevice> {
  const [device] = await host.list({ uuid });
  if (!device) throw sysError('ENODEV', 'migrate', undefined, `no vGPU ${uuid} runs at ${where}`);
  if (!device.vfioUser) throw sysError('EINVAL', 'migrate', undefined, `the daemon at ${where} serves no vfio-user socket for ${uuid}`);
  return device;
}

export function formatReport(r: LiveMigrationReport): string[] {
  const checks = Object.entries(r.same).map(([what, ok]) => `${what} ${ok ? 'equal' : 'DIFFER'}`).join(', ');
  return [
    `workload steps: ${r.stepsBefore} before, ${r.stepsDuring} during pre-copy (${r.busy ? 'busy' : 'idle'}), ${r.stepsAfter} after`,
    `pre-copy: ${r.precopyRounds} rounds, ${r.precopyBytes} bytes; stop-copy: ${r.stopCopyBytes} bytes; guest memory copied: ${r.guestMemoryBytes} bytes`,
    `downtime (STOP_COPY to RUNNING on the target): ${r.downtimeMs.toFixed(2)} ms; total ${r.totalMs.toFixed(1)} ms`,
    `byte for byte, source at the stop against the target: ${checks}`,
  ];
}

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const uuid = stringValue(values, 'uuid');
  const to = stringValue(values, 'to');
  if (uuid === undefined || to === undefined) throw new UsageError('migrate needs -u UUID and --to SOCKET (the target daemon)', 'migrate');
  const rounds = count(values, 'rounds', 4);
  const busy = values['idle'] !== true;
  const source = await cli.hosts.daemon(cli.socket);
  if (!source) throw noDaemonError(cli.socket);
  try {
    const target = await cli.hosts.daemon(to);
    if (!target) throw noDaemonError(to);
    try {
      const from = await liveDevice(source, uuid, cli.socket);
      if (from.vfioUser!.attached) throw sysError('EBUSY', 'migrate', undefined, `a client holds ${uuid}: vgpu migrate is the VMM of the vGPU it moves`);
      await target.start({ uuid, parent: from.parent, type: from.type });
      let report: LiveMigrationReport;
      try {
        const into = await liveDevice(target, uuid, to);
        report = await liveMigrateSimGpu(from.vfioUser!.socket, into.vfioUser!.socket, {
          busy, precopyRounds: rounds, log: (line) => cli.output.err(`vgpu migrate: ${line}`),
        });
        if (report.failures.length) throw sysError('EIO', 'migrate', undefined, `the move did not keep the vGPU's work: ${report.failures.join('; ')}`);
      } catch (err) {
        await target.stop(uuid).catch(() => undefined);
        throw err;
      }
      await source.stop(uuid);
      cli.output.out(`${uuid}: moved from ${cli.socket} to ${to} (${from.parent}, ${from.type})`);
      for (const line of formatReport(report)) cli.output.out(`  ${line}`);
      return 0;
    } finally {
      await target?.close();
    }
  } catch (err) {
    if (isSysError(err)) err.message = `vgpu migrate ${uuid}: ${err.message}`;
    throw err;
  } finally {
    await source.close();
  }
}
