// vGPU lifecycle on the mock kernel's mdev bus: create+remove pairs per second with
// 10,000 live vGPUs, against the same pairs with none live, both set up at once and
// measured in alternating rounds (the ratio shows how it scales), through the registry
// and through sysfs writes; and the memory
// an idle vGPU costs (registry record, VgpuDevice, mock-kernel group and sysfs nodes).
// Targets: >= 10k pairs/s at 10,000 live, <= 64 KiB per idle vGPU.
// Memory needs global.gc: without --expose-gc this file measures it in a child node.
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createMockSys } from '../src/sys/mock.js';
import { attachMockKernel } from '../src/vgpu/mdev/index.js';
import { VgpuRegistry } from '../src/vgpu/registry.js';
import type { RegisterHandler, VgpuBar, VgpuModel, VgpuParent, VgpuPciSpec, VgpuSession, VgpuType } from '../src/vgpu/vendor.js';
import { alternate, note, nsPerCall, report, reportSpread, spread, title } from './report.js';

const LIVE = 10_000;
const PAIRS = 2_000;
const ROUNDS = 9;

// A vendor whose models cost almost nothing: one shared register page, shared specs.
const registers: RegisterHandler = { read: (offset) => offset, write: () => {} };
const PCI: VgpuPciSpec = {
  identity: { vendor: 0x1de5, device: 0x0002, subsystemVendor: 0x1de5, subsystemDevice: 0, classCode: 0x030000, revision: 1 },
  interruptPin: 1,
  msiVectors: 1,
  express: false,
  powerManagement: false,
};
const BARS: readonly VgpuBar[] = [{ index: 0, size: 0x1000, kind: 'memory32', areas: [{ kind: 'trapped', offset: 0, size: 0x1000, handler: registers }] }];

class CheapModel implements VgpuModel {
  readonly pci = PCI;
  readonly bars = BARS;
  open(_session: VgpuSession): void {}
  release(): void {}
  reset(): void {}
  dmaUnmap(): void {}
}

const TYPE: VgpuType = { name: 'tiny', displayName: 'Bench tiny vGPU' };

class CheapBoard implements VgpuParent {
  readonly types = [TYPE];
  live = 0;
  constructor(readonly name: string) {}
  availableInstances(): number {
    return 1_000_000 - this.live;
  }
  createVgpu(): VgpuModel {
    this.live++;
    return new CheapModel();
  }
  removeVgpu(): void {
    this.live--;
  }
}

function setup() {
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver({ name: 'bench' });
  registry.addParent('bench', new CheapBoard('board0'));
  attachMockKernel(registry, sys.kernel);
  return { sys, registry };
}

const TYPE_ID = 'bench-tiny';
const CREATE = `/sys/class/mdev_bus/board0/mdev_supported_types/${TYPE_ID}/create`;

/** Distinct UUIDs made up front, so the pairs time the lifecycle and not randomUUID. */
function uuids(count: number, tag: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${tag.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
  return out;
}

/** A host with `live` vGPUs; times one run of create+remove pairs through the registry or sysfs. */
function pairTimer(live: number): { registry: () => number; sysfs: () => number; check: () => void } {
  const { sys, registry } = setup();
  for (const uuid of uuids(live, 0xffff)) registry.create('board0', TYPE_ID, uuid);
  const names = uuids(PAIRS, 1);
  return {
    registry: () => nsPerCall(PAIRS, (n) => {
      for (let i = 0; i < n; i++) {
        registry.create('board0', TYPE_ID, names[i]!);
        registry.remove(names[i]!);
      }
    }),
    sysfs: () => nsPerCall(PAIRS, (n) => {
      for (let i = 0; i < n; i++) {
        sys.sysfs.write(CREATE, names[i]!);
        sys.sysfs.write(`/sys/bus/mdev/devices/${names[i]!}/remove`, '1');
      }
    }),
    check: () => {
      if (registry.size !== live) throw new Error(`expected ${live} live vGPUs, found ${registry.size}`);
    },
  };
}

function usedBytes(): number {
  (globalThis as { gc?: () => void }).gc!();
  const m = process.memoryUsage();
  // external already includes arrayBuffers (Node's documentation), so it is not added twice.
  return m.heapUsed + m.external;
}

/** Bytes per idle vGPU: memory with LIVE of them minus memory with none, over LIVE. */
function bytesPerIdleVgpu(): number {
  const { registry } = setup();
  const names = uuids(LIVE, 2);
  // Warm up once so lazily made shared state (JIT, interned strings) is not counted.
  for (const uuid of names.slice(0, 100)) registry.create('board0', TYPE_ID, uuid);
  for (const uuid of names.slice(0, 100)) registry.remove(uuid);
  const before = usedBytes();
  for (const uuid of names) registry.create('board0', TYPE_ID, uuid);
  const after = usedBytes();
  if (registry.size !== LIVE) throw new Error('not all vGPUs were created');
  return (after - before) / LIVE;
}

function memoryInChild(): number {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, ['--expose-gc', self, '--memory'], { encoding: 'utf8' });
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  const value = Number(line);
  if (child.status !== 0 || !Number.isFinite(value)) throw new Error(`memory child failed: ${child.stderr || line}`);
  return value;
}

export async function run(): Promise<void> {
  const none = pairTimer(0);
  const loaded = pairTimer(LIVE);
  const ns = alternate(ROUNDS, {
    noneRegistry: none.registry, loadedRegistry: loaded.registry, noneSysfs: none.sysfs, loadedSysfs: loaded.sysfs,
  });
  none.check();
  loaded.check();
  const perVgpu = typeof (globalThis as { gc?: unknown }).gc === 'function' ? bytesPerIdleVgpu() : memoryInChild();
  const rate = (values: number[]) => spread(values.map((v) => 1e9 / v));
  title(`vGPU lifecycle: create+remove on the mock kernel's mdev bus (VgpuDevice, own IOMMU group each), ${ROUNDS} alternating rounds (median, ratio of medians, min..max)`);
  reportSpread('pairs via the registry, 0 live (baseline)', rate(ns.noneRegistry), 'pairs/s');
  reportSpread(`pairs via the registry, ${LIVE} live`, rate(ns.loadedRegistry), 'pairs/s', '0 live', rate(ns.noneRegistry));
  reportSpread('pairs via sysfs writes, 0 live (baseline)', rate(ns.noneSysfs), 'pairs/s');
  reportSpread(`pairs via sysfs writes, ${LIVE} live`, rate(ns.loadedSysfs), 'pairs/s', '0 live', rate(ns.noneSysfs));
  report('memory per idle vGPU', perVgpu / 1024, 'KiB');
  note('mock kernel: sysfs writes are in-process calls standing in for open/write/close of sysfs files');
}

// Run on its own: node dist/bench/vgpu-lifecycle.js (with --expose-gc to skip the child).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--memory')) console.log(String(bytesPerIdleVgpu()));
  else await run();
}
