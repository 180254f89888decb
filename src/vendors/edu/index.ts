// The mediated edu driver: virtual edus sharing one physical edu (see README.md).
export { EduMediatedParent, eduMediatedDriver, EDU_MEDIATED_INSTANCES, EDU_MEDIATED_TYPE } from './parent.js';
export { EduMediatedVgpu, EDU_MEDIATED_DMA_ERROR } from './vgpu.js';
export { PhysicalEdu, BufferContext, EDU_IRQ_FACTORIAL } from './physical.js';
export type { PhysicalEduOptions, DmaRequest } from './physical.js';
export { IovaAllocator } from './iova-allocator.js';
export * from './edu-driver.js';
