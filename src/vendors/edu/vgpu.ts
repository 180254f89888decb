// One mediated edu vGPU: a virtual edu with edu's identity and register map (BAR0,
// 1 MiB, trapped), its own registers and interrupt state, INTx and one MSI. Its
// factorials and DMA commands are carried out by the shared physical edu.
//
// It cannot migrate, and says so by having no `migration`: the VFIO migration features
// are absent on it (ENOTTY, as the kernel answers for a driver without mig_ops). The
// physical edu holds the state that matters (a factorial or DMA in flight, its DMA
// buffer) and has no way to save or load it.
//
// Accesses follow edu (and src/sys/mock/devices/edu.ts): 4-byte only (narrower reads
// give 0, writes are dropped), ~0 where edu has no register, DMA registers frozen while
// a transfer runs. One register is the mediator's own, where edu has none:
//   0xa0 DMA_ERROR (read-only): 0 after a good transfer, else the errno of the last
//        failed one (EINVAL: a device-side range QEMU would abort on; a pin error such
//        as EINVAL for an IOVA the user never mapped or EPERM for one mapped without the
//        access needed; EPERM with Bus Master off; ECANCELED when the vGPU's user
//        unmapped the pages before the transfer could finish: on the mock always, on
//        a real edu only if it did not finish within 3 s of the unmap). A failed transfer completes like a good one otherwise
//        (START clears, interrupt 0x100 if asked) and touches no memory.
import { constants } from 'node:os';
import { EDU_IDENTITY } from '../../sys/mock/devices/edu.js';
import type { VgpuBar, VgpuModel, VgpuPciSpec, VgpuSession } from '../../vgpu/vendor.js';
import {
  EDU_DMA_BUFFER, EDU_DMA_LIMIT, EDU_ID, EDU_IRQ_DMA, eduDmaCmd, eduRegs, eduStatus,
} from './edu-driver.js';
import { EDU_IRQ_FACTORIAL, type BufferContext, type PhysicalEdu } from './physical.js';

export const EDU_MEDIATED_DMA_ERROR = 0xa0;
const BAR0_SIZE = 1 << 20;
const BUFFER_SIZE = 4096n;

/** edu's check: the device-side range starts and ends strictly inside the buffer. */
function deviceRangeOk(address: bigint, count: bigint): boolean {
  const end = EDU_DMA_BUFFER + BUFFER_SIZE;
  const inside = (x: bigint): boolean => x >= EDU_DMA_BUFFER && x < end;
  return count > 0n && inside(address) && inside(address + count);
}

export class EduMediatedVgpu implements VgpuModel {
  readonly pci: VgpuPciSpec = {
    identity: EDU_IDENTITY, interruptPin: 1, msiVectors: 1, express: false, powerManagement: false,
  };
  readonly bars: readonly VgpuBar[] = [{
    index: 0, size: BAR0_SIZE, kind: 'memory32',
    areas: [{
      kind: 'trapped', offset: 0, size: BAR0_SIZE,
      handler: {
        read: (offset, size) => (size === 4 ? this.register(offset) : 0),
        write: (offset, size, value) => { if (size === 4) this.setRegister(offset, value >>> 0); },
      },
    }],
  }];

  private session: VgpuSession | undefined;
  /** Bumped at every open, reset and release: completions of older work are dropped. */
  private generation = 0;
  private liveness = 0;
  private fact = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCount = 0n;
  private dmaCmd = 0n;
  private dmaError = 0;

  constructor(readonly uuid: string, private readonly physical: PhysicalEdu, readonly context: BufferContext) {}

  open(session: VgpuSession): void {
    this.reset();
    this.session = session;
  }

  release(): void {
    this.reset();
    this.session = undefined;
  }

  reset(): void {
    this.generation++;
    this.physical.resetContext(this.context);
    this.liveness = 0;
    this.fact = 0;
    this.status = 0;
    this.irqStatus = 0;
    this.dmaSrc = this.dmaDst = this.dmaCount = this.dmaCmd = 0n;
    this.dmaError = 0;
  }

  dmaUnmap(iova: bigint, length: bigint): void {
    this.physical.dmaUnmap(this.context, iova, length);
  }

  private register(offset: number): number {
    switch (offset) {
      case eduRegs.ID: return EDU_ID;
      case eduRegs.LIVENESS: return this.liveness;
      case eduRegs.FACTORIAL: return this.fact;
      case eduRegs.STATUS: return this.status;
      case eduRegs.IRQ_STATUS: return this.irqStatus;
      case eduRegs.DMA_SRC: return Number(this.dmaSrc & 0xffffffffn);
      case eduRegs.DMA_DST: return Number(this.dmaDst & 0xffffffffn);
      case eduRegs.DMA_COUNT: return Number(this.dmaCount & 0xffffffffn);
      case eduRegs.DMA_CMD: return Number(this.dmaCmd & 0xffffffffn);
      case EDU_MEDIATED_DMA_ERROR: return this.dmaError;
      default: return 0xffffffff;
    }
  }

  private setRegister(offset: number, value: number): void {
    const running = (this.dmaCmd & BigInt(eduDmaCmd.START)) !== 0n;
    switch (offset) {
      case eduRegs.LIVENESS: this.liveness = ~value >>> 0; break;
      case eduRegs.FACTORIAL: this.startFactorial(value); break;
      case eduRegs.STATUS:
        this.status = value & eduStatus.IRQ_AFTER_FACTORIAL ? this.status | eduStatus.IRQ_AFTER_FACTORIAL : this.status & ~eduStatus.IRQ_AFTER_FACTORIAL;
        break;
      case eduRegs.IRQ_RAISE: this.raise(value); break;
      case eduRegs.IRQ_ACK: this.irqStatus = (this.irqStatus & ~value) >>> 0; break;
      case eduRegs.DMA_SRC: if (!running) this.dmaSrc = BigInt(value); break;
      case eduRegs.DMA_DST: if (!running) this.dmaDst = BigInt(value); break;
      case eduRegs.DMA_COUNT: if (!running) this.dmaCount = BigInt(value); break;
      case eduRegs.DMA_CMD: if (!running && value & eduDmaCmd.START) this.startDma(value); break;
    }
  }

  private raise(bits: number): void {
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (this.irqStatus !== 0) this.session?.raise(0);
  }

  private startFactorial(n: number): void {
    if (this.status & eduStatus.COMPUTING) return; // edu ignores it while computing
    this.fact = n;
    this.status |= eduStatus.COMPUTING;
    const generation = this.generation;
    this.physical.factorial(this.context, n, (result) => {
      if (generation !== this.generation) return;
      this.fact = result;
      this.status &= ~eduStatus.COMPUTING;
      if (this.status & eduStatus.IRQ_AFTER_FACTORIAL) this.raise(EDU_IRQ_FACTORIAL);
    });
  }

  private startDma(command: number): void {
    this.dmaCmd = BigInt(command);
    const generation = this.generation;
    const done = (error: number): void => {
      if (generation !== this.generation) return;
      this.dmaError = error;
      this.dmaCmd &= ~BigInt(eduDmaCmd.START);
      if (this.dmaCmd & BigInt(eduDmaCmd.IRQ)) this.raise(EDU_IRQ_DMA);
    };
    const toRam = (command & eduDmaCmd.TO_RAM) !== 0;
    const deviceAddress = toRam ? this.dmaSrc : this.dmaDst;
    const ramIova = (toRam ? this.dmaDst : this.dmaSrc) & (EDU_DMA_LIMIT - 1n);
    const session = this.session;
    // Refused here, the physical engine never sees it: QEMU would abort on such a range.
    if (!session || !deviceRangeOk(deviceAddress, this.dmaCount)) {
      queueMicrotask(() => done(constants.errno.EINVAL));
      return;
    }
    this.physical.dma({
      context: this.context, dma: session.dma, ramIova, deviceAddress, count: Number(this.dmaCount), toRam,
      busMaster: () => session.busMaster, done,
    });
  }
}
