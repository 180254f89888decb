// The migration states of VFIO migration v2 and the kernel's path through them
// (vfio_mig_get_next_state in drivers/vfio/vfio_main.c): a requested state is reached
// one arc at a time, through intermediate states, never through a state the device's
// migration flags do not support, never with a saving state (PRE_COPY, PRE_COPY_P2P,
// STOP_COPY) in the middle of a path. Both transports run this one table.
import { sysError } from '../../addon/errors.js';
import { migrationFlags, migStates } from '../../uapi/migration.js';

export type MigState = (typeof migStates)[keyof typeof migStates];

const { VFIO_DEVICE_STATE_ERROR: ERROR, VFIO_DEVICE_STATE_STOP: STOP, VFIO_DEVICE_STATE_RUNNING: RUNNING,
  VFIO_DEVICE_STATE_STOP_COPY: STOP_COPY, VFIO_DEVICE_STATE_RESUMING: RESUMING, VFIO_DEVICE_STATE_RUNNING_P2P: RUNNING_P2P,
  VFIO_DEVICE_STATE_PRE_COPY: PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P: PRE_COPY_P2P } = migStates;
const { VFIO_MIGRATION_STOP_COPY: F_STOP_COPY, VFIO_MIGRATION_P2P: F_P2P, VFIO_MIGRATION_PRE_COPY: F_PRE_COPY } = migrationFlags;

export const MIG_STATE_COUNT = 8;

/** The states' names without the VFIO_DEVICE_STATE_ prefix, by number. */
export const migStateNames: readonly string[] = ['ERROR', 'STOP', 'RUNNING', 'STOP_COPY', 'RESUMING', 'RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P'];

export function migStateName(state: number): string {
  return migStateNames[state] ?? `state ${state}`;
}

export function isMigState(value: number): value is MigState {
  return Number.isInteger(value) && value >= 0 && value < MIG_STATE_COUNT;
}

/** The migration flags a device may report: STOP_COPY, optionally with P2P and/or PRE_COPY. */
export function validMigrationFlags(flags: number): boolean {
  return (flags & F_STOP_COPY) !== 0 && (flags & ~(F_STOP_COPY | F_P2P | F_PRE_COPY)) === 0;
}

// vfio_from_fsm_table: from [cur][target] the next state to step to.
const S = { E: ERROR, S: STOP, R: RUNNING, SC: STOP_COPY, RE: RESUMING, RP: RUNNING_P2P, PC: PRE_COPY, PP: PRE_COPY_P2P };
//          target:     ERROR STOP  RUNNING STOP_COPY RESUMING RUNNING_P2P PRE_COPY PRE_COPY_P2P
const fromTable: readonly (readonly MigState[])[] = [
  /* ERROR */        [S.E, S.E, S.E, S.E, S.E, S.E, S.E, S.E],
  /* STOP */         [S.E, S.S, S.RP, S.SC, S.RE, S.RP, S.RP, S.RP],
  /* RUNNING */      [S.E, S.RP, S.R, S.RP, S.RP, S.RP, S.PC, S.RP],
  /* STOP_COPY */    [S.E, S.S, S.S, S.SC, S.S, S.S, S.E, S.E],
  /* RESUMING */     [S.E, S.S, S.S, S.S, S.RE, S.S, S.S, S.S],
  /* RUNNING_P2P */  [S.E, S.S, S.R, S.S, S.S, S.RP, S.R, S.PP],
  /* PRE_COPY */     [S.E, S.R, S.R, S.PP, S.R, S.R, S.PC, S.PP],
  /* PRE_COPY_P2P */ [S.E, S.RP, S.RP, S.SC, S.RP, S.RP, S.PC, S.PP],
];

// state_flags_table: the migration flags a state needs (ERROR needs every bit: never supported).
const stateFlags: readonly number[] = [
  0xffff_ffff, F_STOP_COPY, F_STOP_COPY, F_STOP_COPY, F_STOP_COPY,
  F_STOP_COPY | F_P2P, F_STOP_COPY | F_PRE_COPY, F_STOP_COPY | F_P2P | F_PRE_COPY,
];

/** Whether a device with these migration flags has `state` (ERROR never counts). */
export function stateSupported(state: number, flags: number): boolean {
  if (!isMigState(state)) return false;
  const need = stateFlags[state]!;
  return ((need & flags) >>> 0) === need >>> 0;
}

/**
 * vfio_mig_get_next_state: the next arc from `cur` towards `target`. EINVAL when either
 * state is unknown or unsupported by `flags`, or when the path is blocked (STOP_COPY to
 * a PRE_COPY state, anything from ERROR).
 */
export function nextMigState(cur: number, target: number, flags: number): MigState {
  const op = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';
  if (!stateSupported(cur, flags)) throw sysError('EINVAL', 'ioctl', op, `the device is in ${migStateName(cur)}`);
  if (!stateSupported(target, flags)) throw sysError('EINVAL', 'ioctl', op, `${migStateName(target)} is not a state this device supports`);
  let next = fromTable[cur]![target]!;
  while (!stateSupported(next, flags) && next !== ERROR) next = fromTable[next]![target]!;
  if (next === ERROR) throw sysError('EINVAL', 'ioctl', op, `no path from ${migStateName(cur)} to ${migStateName(target)}`);
  return next;
}

/** Every arc from `cur` to `target` in order (empty when already there); EINVAL as nextMigState. */
export function migPath(cur: MigState, target: number, flags: number): MigState[] {
  const path: MigState[] = [];
  let at = cur;
  while (at !== target) {
    at = nextMigState(at, target, flags);
    path.push(at);
  }
  return path;
}

/** PRE_COPY, PRE_COPY_P2P and STOP_COPY: the states that share one saving data session. */
export function isSavingState(state: number): boolean {
  return state === PRE_COPY || state === PRE_COPY_P2P || state === STOP_COPY;
}

/** PRE_COPY and PRE_COPY_P2P. */
export function isPrecopyState(state: number): boolean {
  return state === PRE_COPY || state === PRE_COPY_P2P;
}

/** States in which the device runs (may DMA, interrupt and change its state). */
export function isRunningState(state: number): boolean {
  return state === RUNNING || state === RUNNING_P2P || state === PRE_COPY || state === PRE_COPY_P2P;
}

/**
 * A driver's migration_set_state loop (as mtty_set_state): steps arc by arc from
 * `cur` to `target` through `step(from, to)`, recording each state reached with
 * `reached`. Only the last arc may open a data channel. If a step throws, the device
 * stays in the last state reached and the error passes on.
 */
export function walkMigState<C>(
  cur: MigState, target: number, flags: number,
  step: (from: MigState, to: MigState) => C | undefined,
  reached: (state: MigState) => void,
): C | undefined {
  let at = cur;
  let result: C | undefined;
  while (at !== target) {
    const next = nextMigState(at, target, flags);
    result = step(at, next);
    at = next;
    reached(next);
    if (result !== undefined && next !== target) {
      throw new Error(`the arc ${migStateName(cur)} -> ${migStateName(next)} opened a data channel in the middle of a path`);
    }
  }
  return result;
}
