// What a verb runs with: where the definitions and the daemon's socket are, where to
// write, and how to reach a host: the daemon when one runs, else a host in this process.
import { resolve } from 'node:path';
import type { HostApi } from '../host/api.js';
import { sysError, type SysError } from '../addon/errors.js';
import { definitionsRootOf, type ClosableHost } from './definitions-link.js';
import type { Output } from './output.js';

export const defaultRoot = '/etc/vfio-vgpu.d';
export const defaultSocket = '/run/vfio-vgpu/vgpu.sock';

export interface HostProvider {
  /** The daemon's client when a daemon answers at `socket`, else undefined. */
  daemon(socket: string): Promise<ClosableHost | undefined>;
  /** A host owned by this process over the definitions at `root`. */
  inProcess(root: string): ClosableHost | Promise<ClosableHost>;
}

export interface Cli {
  root: string;
  /** Whether the root was asked for (--root or VGPU_DEFINITIONS_ROOT), not the default. */
  rootGiven?: boolean;
  socket: string;
  output: Output;
  hosts: HostProvider;
}

/** The error of a verb that needs live state when no daemon runs. */
export function noDaemonError(socket: string): SysError {
  const err = sysError('ECONNREFUSED', 'connect');
  err.message = `no vgpu daemon runs at ${socket}; start one with \`vgpu serve\``;
  return err;
}

/** What a verb runs against: the host, and the definitions root it uses when known. */
export type HostRun<T> = (host: HostApi, definitionsRoot: string | undefined) => Promise<T>;

/** A daemon works on its own root: one asked for that differs would otherwise be ignored silently. */
function noteOtherRoot(cli: Cli, daemonRoot: string | undefined): void {
  if (!cli.rootGiven || daemonRoot === undefined || resolve(cli.root) === daemonRoot) return;
  cli.output.err(`vgpu: note: the daemon at ${cli.socket} uses the definitions in ${daemonRoot}, not ${cli.root}`);
}

async function using<T>(host: ClosableHost, run: HostRun<T>, cli?: Cli): Promise<T> {
  try {
    const root = definitionsRootOf(host);
    if (cli) noteOtherRoot(cli, root);
    return await run(host, root);
  } finally {
    await host.close();
  }
}

/** Runs `run` against the daemon, or fails clearly when none runs (start, stop). */
export async function withDaemon<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  if (!daemon) throw noDaemonError(cli.socket);
  return using(daemon, run, cli);
}

/**
 * Runs `run` against the daemon, or when none runs against a host made for this command
 * (types, list, info): saying so on stderr, since what it shows ends with the command.
 */
export async function withLiveHost<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  if (daemon) return using(daemon, run, cli);
  cli.output.err(`vgpu: note: no daemon runs at ${cli.socket}; answering from a host in this process (nothing stays running)`);
  return using(await cli.hosts.inProcess(cli.root), run);
}

/** Runs `run` against the daemon when one runs, else on the definitions at cli.root (define, undefine, modify, list -d). */
export async function withDefinitions<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  return daemon ? using(daemon, run, cli) : using(await cli.hosts.inProcess(cli.root), run);
}
