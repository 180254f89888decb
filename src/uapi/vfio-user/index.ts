// The vfio-user wire format: constants, header, message bodies, VERSION capabilities and
// the stream framer. Pure code, no I/O.
export * from './constants.js';
export * from './header.js';
export * from './version.js';
export * from './dma.js';
export * from './device.js';
export * from './region.js';
export * from './migration.js';
export * from './feature.js';
export * from './framer.js';
