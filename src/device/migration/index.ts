export * from './states.js';
export * from './ops.js';
export * from './feature.js';
export * from './logging.js';
