// What exists between a successful VERSION and the end of a connection: the negotiated
// limits, the client's DMA regions, the eventfds it handed over, and the device, open
// for this client. Closing it releases all of that, whatever state the client left.
import type { DeviceBackend, EventfdRef, EventfdSink } from '../../device/backend.js';
import { isSavingState, type MigrationDataChannel } from '../../device/migration/index.js';
import { DmaRegions, type RemoteDma } from '../../device/dma/dma-regions.js';
import { DupEventfdSink } from '../../device/eventfd-sink.js';
import type { DmaAccessLayout } from '../../uapi/vfio-user/index.js';

/** What VERSION settled. */
export interface Negotiated {
  readonly major: number;
  readonly minor: number;
  /** Fds the client may send in one message (ours). */
  readonly maxMsgFds: number;
  /** Fds we may send the client in one message (its). */
  readonly clientMaxMsgFds: number;
  /** The largest count a client's REGION_READ/WRITE may carry (ours). */
  readonly maxDataXferSize: number;
  /** The largest count our DMA_READ/DMA_WRITE may carry (the client's). */
  readonly clientMaxDataXferSize: number;
  readonly maxDmaMaps: number;
  /** The DMA page size (one size: the host's). */
  readonly pgsize: number;
  /** How DMA_READ/DMA_WRITE bodies are laid out for this client. */
  readonly dmaLayout: DmaAccessLayout;
}

/** Eventfd references of one client, all released at the end whatever the device did. */
class ClientEventfds implements EventfdSink {
  private readonly inner = new DupEventfdSink();
  private readonly refs = new Set<EventfdRef>();

  get references(): number {
    return this.inner.references;
  }

  acquire(fd: number): EventfdRef {
    const ref = this.inner.acquire(fd);
    const tracked: EventfdRef = {
      signal: () => ref.signal(),
      release: () => {
        this.refs.delete(tracked);
        ref.release();
      },
    };
    this.refs.add(tracked);
    return tracked;
  }

  releaseAll(): void {
    for (const ref of [...this.refs]) ref.release();
  }
}

export class Session {
  readonly dma: DmaRegions;
  private readonly eventfds = new ClientEventfds();
  private opened = false;
  private closed = false;
  /** GET_REGION_INFO answers (offset and size), asked once per region. */
  readonly regionCache = new Map<number, { offset: bigint; size: bigint }>();
  numRegions: number | undefined;
  /** The data session the last state change opened: what MIG_DATA_READ/WRITE use in place of a data_fd. */
  private channel: MigrationDataChannel | undefined;

  constructor(readonly backend: DeviceBackend, readonly negotiated: Negotiated, remote: RemoteDma, windowSize: number | undefined) {
    this.dma = new DmaRegions({
      pageSize: negotiated.pgsize,
      maxRegions: negotiated.maxDmaMaps,
      remote,
      ...(windowSize === undefined ? {} : { windowSize }),
      unmapNotice: (iova, length) => backend.dmaUnmap?.(iova, length),
    });
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Eventfd references the device holds now. */
  get eventfdReferences(): number {
    return this.eventfds.references;
  }

  /** Opens the device for this client (may throw its SysError, e.g. EBUSY). */
  open(): void {
    this.backend.open({ dma: this.dma, eventfds: this.eventfds });
    this.opened = true;
  }

  get migrationChannel(): MigrationDataChannel | undefined {
    return this.channel;
  }

  /**
   * After a successful MIG_DEVICE_STATE SET: a new channel replaces the old one (whose
   * release is the kernel's close of the old data_fd). Without one, the old channel goes
   * on only while the device stays in a saving state (PRE_COPY to STOP_COPY keeps the
   * same stream, as the kernel's data_fd does); leaving the saving and resuming states
   * ends it.
   */
  migrationStateChanged(channel: MigrationDataChannel | undefined, state: number): void {
    if (channel === undefined && this.channel !== undefined && isSavingState(state) && this.channel.direction === 'save') return;
    const old = this.channel;
    this.channel = channel;
    old?.release();
  }

  /**
   * The client is gone: the device closes first (its release drops its pins through
   * the DMA space), then every eventfd reference and DMA region goes. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      try {
        this.migrationStateChanged(undefined, -1);
      } finally {
        if (this.opened) this.backend.close();
      }
    } finally {
      this.opened = false;
      this.eventfds.releaseAll();
      this.dma.close();
    }
  }
}
