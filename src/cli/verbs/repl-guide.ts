// The few lines `vgpu repl` prints first: what is loaded and how to begin.
import type { Host } from '../../host/host.js';

export function replGuide(host: Host, daemon: boolean, socket: string): string[] {
  return [
    `vgpu repl: a host of its own on the ${host.sys.kind} fd layer, parents ${host.parentNames().join(', ') || 'none'}, definitions in ${host.definitions.root}`,
    '  host       HostApi: await host.types(), await host.start({ parent: "simgpu0", type: "simgpu-1Q" })',
    '  sys        the fd layer;  registry  the vGPU registry (drivers, parents, vGPUs)',
    '  vfio.*     the VFIO client (also loose: openPciDevice(sys, uuid), Group, Container)',
    '  uapi.*     the kernel ABI: ioctl numbers, flags, struct codecs',
    '  migrateDevice(src, dst)  a VMM\'s move of device state; liveMigrateSimGpu(fromSock, toSock) with a workload',
    `  daemon     ${daemon ? `a client of the daemon at ${socket} (the same calls)` : `undefined: no daemon runs at ${socket}`}`,
    'Values print as one-screen summaries; errors as code and errno. .exit leaves, vGPUs of this host end with it.',
  ];
}
