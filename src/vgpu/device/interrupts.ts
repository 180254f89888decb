// A vGPU's interrupts while its device is open: vfio-pci's SET_IRQS rules and eventfd
// delivery (VfioPciIrqs, reused as is) with the function's side in front of them.
// VgpuSession.raise(vector) goes to whatever the user enabled: an MSI-X vector, an MSI
// vector, or the INTx line (vector 0), and honours the masks:
//   - MSI-X: a vector masked in its Vector Control, or under the Function Mask, becomes
//     pending in the PBA and is sent when unmasked;
//   - MSI: a vector masked in the capability's Mask Bits becomes pending in its Pending
//     Bits and is sent when unmasked;
//   - INTx is level-triggered and automasked (vfio-pci). The vendor never lowers the
//     line: raise(0) asserts it, and it stays asserted until the interrupt has reached
//     the user and the user acknowledged it by unmasking INTx (SET_IRQS UNMASK, as a
//     VMM does after the guest handled it), which lowers it. A raise while masked (by
//     the automask, a MASK or COMMAND's INTx Disable) is held, and sent at the unmask.
// Enabling MSI or MSI-X through SET_IRQS unmasks the vectors it enables, as the host
// kernel does when it requests their interrupts on a vfio-pci device, so a user that
// never touches mask bits (a VMM that emulates them itself, as QEMU does) gets every
// interrupt; masks the user sets afterwards are honoured. Disabling MSI-X masks every
// vector again. While MSI or MSI-X is enabled the function does not use INTx (the line
// is lowered).
import type { EventfdSink } from '../../device/backend.js';
import { VfioPciIrqs, type IrqCounts } from '../../device/pci/irqs.js';
import type { VgpuConfig } from './config.js';
import type { MsixTable } from './msix-table.js';

export class VgpuInterrupts {
  readonly irqs: VfioPciIrqs;
  /** Raised and not yet sent to the user. */
  private intxPending = false;
  /** A COMMAND INTx Disable change is unmasking: that is no acknowledgement. */
  private virqChanging = false;
  /** vdev->msi_qmax of the last MSI enable. */
  msiQmax = 0;

  constructor(counts: IrqCounts, eventfds: EventfdSink, private readonly config: VgpuConfig,
    private readonly msix: MsixTable | undefined) {
    this.irqs = new VfioPciIrqs(counts, eventfds, {
      enableMsi: (index, nvec) => this.enableMsi(index, nvec),
      disableMsi: (index) => this.disableMsi(index),
      intxUnmasking: () => this.intxUnmasking(),
      intxSent: () => { this.intxPending = false; },
    });
    if (msix) msix.onUnmask = (vector) => this.msixUnmasked(vector);
  }

  /** VgpuSession.raise. Vectors the enabled type does not have are ignored. */
  raise(vector: number): void {
    const type = this.irqs.type;
    if (type === 'msix') {
      const msix = this.msix!;
      if (!(vector >= 0 && vector < msix.vectors)) return;
      if (this.config.msixFunctionMasked() || msix.masked(vector)) msix.setPending(vector, true);
      else this.irqs.signalMsi(vector);
    } else if (type === 'msi') {
      if (!(vector >= 0 && vector < 1 << this.msiQmax)) return;
      if (this.config.msiMasked(vector)) this.config.setMsiPending(vector, true);
      else this.irqs.signalMsi(vector);
    } else if (vector === 0 && this.irqs.counts.intx) {
      this.assertIntx();
    }
  }

  /** A function reset: INTx/MSI/MSI-X off (ERR and REQ stay bound), nothing pending, line low. */
  reset(): void {
    this.irqs.disable();
    this.lowerIntx();
    this.msix?.clearPending();
    this.config.clearMsiPending();
  }

  /** Mask bits changed in config space: send what became unmasked and is pending. */
  masksChanged(): void {
    const type = this.irqs.type;
    if (type === 'msi') {
      for (let v = 0; v < 1 << this.msiQmax; v++) {
        if (this.config.msiPending(v) && !this.config.msiMasked(v)) {
          this.config.setMsiPending(v, false);
          this.irqs.signalMsi(v);
        }
      }
    } else if (type === 'msix' && !this.config.msixFunctionMasked()) {
      const msix = this.msix!;
      for (let v = 0; v < msix.vectors; v++) if (msix.pending(v) && !msix.masked(v)) this.sendPendingMsix(v);
    }
  }

  private msixUnmasked(vector: number): void {
    if (this.irqs.type === 'msix' && !this.config.msixFunctionMasked() && this.msix!.pending(vector)) this.sendPendingMsix(vector);
  }

  private sendPendingMsix(vector: number): void {
    this.msix!.setPending(vector, false);
    this.irqs.signalMsi(vector);
  }

  /** COMMAND's INTx Disable (vfio-pci masks INTx with it; clearing it is no acknowledgement). */
  setIntxDisabled(disabled: boolean): void {
    this.virqChanging = true;
    try {
      this.irqs.setVirqDisabled(disabled);
    } finally {
      this.virqChanging = false;
    }
  }

  private assertIntx(): void {
    this.intxPending = true;
    this.config.setIntxStatus(true);
    // Asserting runs vfio's handler: sent now unless masked (then held until the unmask).
    this.irqs.setIntxLevel(true);
  }

  private lowerIntx(): void {
    this.intxPending = false;
    this.config.setIntxStatus(false);
    this.irqs.setIntxLevel(false);
  }

  /** The user unmasks INTx: the interrupt in service is acknowledged; the line drops unless another is held. */
  private intxUnmasking(): void {
    if (!this.virqChanging && !this.intxPending) this.lowerIntx();
  }

  private enableMsi(index: 1 | 2, nvec: number): void {
    this.lowerIntx();
    if (index === 1) {
      this.msiQmax = Math.ceil(Math.log2(nvec));
      this.config.unmaskMsiVectors(nvec);
      this.config.setMsiEnabled(true, this.msiQmax);
    } else {
      for (let v = 0; v < nvec && v < this.msix!.vectors; v++) this.msix!.setMasked(v, false);
      this.config.setMsixEnabled(true);
    }
  }

  private disableMsi(index: 1 | 2): void {
    if (index === 1) {
      this.config.setMsiEnabled(false, 0);
    } else {
      this.config.setMsixEnabled(false);
      for (let v = 0; v < this.msix!.vectors; v++) this.msix!.setMasked(v, true);
    }
  }
}
