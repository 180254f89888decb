// Command-line options of `npm run test:kernel -- [options]`.
import { kernelSeries, type KernelSeries } from './fetch.js';

export interface Options {
  kernels: KernelSeries[];
  timeoutSeconds: number;
  parity: boolean;
  echo: boolean;
  /** Run the edu phases (QEMU 7.2) and the vm phases (QEMU 11 with vfio-user). */
  edu: boolean;
  vm: boolean;
  /** Only these edu phases (while working on one); undefined: every phase. */
  phases?: string[];
}

export const usage = `usage: node dist/test/kernel/run.js [--kernel=6.1|6.12|all] [--timeout=SECONDS] [--no-parity] [--echo] [--no-vm|--vm-only]
  --kernel     which Debian kernel(s) to boot (default all: 6.1 then 6.12)
  --timeout    hard limit for one boot, from QEMU's start to its exit (default 600)
  --no-parity  skip the comparison with the mock kernel
  --echo       copy the guest's serial console to stdout while it runs
  --no-vm      skip the vm phases (QEMU 11 attaching our vGPUs over vfio-user)
  --vm-only    run only the vm phases
  --phase      run only these edu phases (e.g. mdev-host); parity only when conformance is one`;

export function parseOptions(argv: readonly string[]): Options {
  const options: Options = { kernels: [...kernelSeries], timeoutSeconds: 600, parity: true, echo: false, edu: true, vm: true };
  for (const arg of argv) {
    const [key, value] = arg.split('=', 2) as [string, string | undefined];
    if (key === '--kernel' && value !== undefined) {
      if (value === 'all') options.kernels = [...kernelSeries];
      else {
        const picked = value.split(',');
        for (const k of picked) if (!(kernelSeries as readonly string[]).includes(k)) throw new Error(`unknown kernel ${k}\n${usage}`);
        options.kernels = picked as KernelSeries[];
      }
    } else if (key === '--timeout' && value !== undefined && /^\d+$/.test(value) && Number(value) > 0) {
      options.timeoutSeconds = Number(value);
    } else if (arg === '--no-parity') {
      options.parity = false;
    } else if (arg === '--echo') {
      options.echo = true;
    } else if (arg === '--no-vm') {
      options.vm = false;
    } else if (key === '--phase' && value !== undefined && /^[a-z0-9-]+(,[a-z0-9-]+)*$/.test(value)) {
      options.phases = value.split(',');
    } else if (arg === '--vm-only') {
      options.edu = false;
    } else {
      throw new Error(`bad option ${arg}\n${usage}`);
    }
  }
  return options;
}
