// What a verb runs with: where the definitions and the daemon's socket are, where to
// write, and how to reach a host: the daemon when one runs, else a host in this process.
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

async function using<T>(host: ClosableHost, run: HostRun<T>): Promise<T> {
  try {
    return await run(host, definitionsRootOf(host));
  } finally {
    await host.close();
  }
}

/** Runs `run` against the daemon, or fails clearly when none runs (start, stop). */
export async function withDaemon<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  if (!daemon) throw noDaemonError(cli.socket);
  return using(daemon, run);
}

/**
 * Runs `run` against the daemon, or when none runs against a host made for this command
 * (types, list, info): saying so on stderr, since what it shows ends with the command.
 */
export async function withLiveHost<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  if (daemon) return using(daemon, run);
  cli.output.err(`vgpu: note: no daemon runs at ${cli.socket}; answering from a host in this process (nothing stays running)`);
  return using(await cli.hosts.inProcess(cli.root), run);
}

/** Runs `run` against the daemon when one runs, else on the definitions at cli.root (define, undefine, modify, list -d). */
export async function withDefinitions<T>(cli: Cli, run: HostRun<T>): Promise<T> {
  const daemon = await cli.hosts.daemon(cli.socket);
  return using(daemon ?? await cli.hosts.inProcess(cli.root), run);
}
