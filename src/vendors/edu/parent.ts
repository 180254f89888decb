// The mediated edu driver's parent: a physical edu opened through the VFIO client (the
// simulated one on the mock kernel, the real one through the addon), shared by up to
// four virtual edus of the type "edu-mediated".
import { sysError } from '../../addon/errors.js';
import type { SysLayer } from '../../sys/types.js';
import { openPciDevice } from '../../vfio/index.js';
import type { VendorDriver, VgpuModel, VgpuParent, VgpuType } from '../../vgpu/vendor.js';
import { PhysicalEdu, type PhysicalEduOptions } from './physical.js';
import { EduMediatedVgpu } from './vgpu.js';

export const eduMediatedDriver: VendorDriver = { name: 'edu' };
export const EDU_MEDIATED_INSTANCES = 4;

export const EDU_MEDIATED_TYPE: VgpuType = {
  name: 'mediated', // the type id is "edu-mediated"
  displayName: 'Mediated edu',
  description: 'a virtual edu whose factorials and DMA run on the physical edu',
  attributes: { dma_buffer: '4096' },
};

export class EduMediatedParent implements VgpuParent {
  readonly types = [EDU_MEDIATED_TYPE];
  private readonly live = new Set<EduMediatedVgpu>();

  private constructor(readonly name: string, readonly physical: PhysicalEdu) {}

  /** Opens the physical edu at `address` ("0000:00:04.0") through the VFIO client. */
  static open(sys: SysLayer, address: string, options: PhysicalEduOptions = {}): EduMediatedParent {
    const handle = openPciDevice(sys, address);
    try {
      return new EduMediatedParent(address, new PhysicalEdu(handle, EDU_MEDIATED_INSTANCES, options));
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  availableInstances(): number {
    return EDU_MEDIATED_INSTANCES - this.live.size;
  }

  createVgpu(_type: VgpuType, uuid: string): VgpuModel {
    const context = this.physical.createContext();
    if (!context) throw sysError('ENOSPC', 'create', undefined, `${this.name} has no free edu-mediated instance`);
    const vgpu = new EduMediatedVgpu(uuid, this.physical, context);
    this.live.add(vgpu);
    return vgpu;
  }

  removeVgpu(model: VgpuModel): void {
    const vgpu = model as EduMediatedVgpu;
    if (!this.live.delete(vgpu)) return;
    this.physical.destroyContext(vgpu.context);
  }

  /** Closes the physical device (after the registry removed this parent). Idempotent. */
  close(): void {
    this.physical.close();
  }
}
