export * from './constants.js';
export * from './ioctls.js';
export * from './struct.js';
export * from './structs.js';
export * from './caps.js';
export * from './vfio-user/index.js';
