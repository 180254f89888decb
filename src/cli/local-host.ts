// The host a command without a daemon answers from: the saved definitions are read here
// (`list -d` needs no parent), and the full Host (addon, mock kernel, parents) is made
// only when a call needs parents or live devices, and then once.
import type { Definition, DefineRequest, DeviceReport, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo } from '../host/api.js';
import { DefinitionStore, definitionsRoot } from '../host/definitions.js';
import type { Host } from '../host/host.js';
import type { ClosableHost } from './definitions-link.js';

export class LocalHost implements ClosableHost {
  readonly definitions: DefinitionStore;
  private host: Promise<Host> | undefined;

  constructor(root: string) {
    this.definitions = new DefinitionStore(definitionsRoot(root));
  }

  async listDefined(filter: { uuid?: string; parent?: string } = {}): Promise<Definition[]> { return this.definitions.select(filter); }
  async types(filter?: { parent?: string }): Promise<TypeInfo[]> { return (await this.full()).types(filter); }
  async list(filter?: { uuid?: string; parent?: string }): Promise<LiveDevice[]> { return (await this.full()).list(filter); }
  async start(request: StartRequest): Promise<string> { return (await this.full()).start(request); }
  async stop(uuid: string): Promise<void> { return (await this.full()).stop(uuid); }
  async define(request: DefineRequest): Promise<string> { return (await this.full()).define(request); }
  async undefine(uuid: string, parent?: string): Promise<number> { return (await this.full()).undefine(uuid, parent); }
  async modify(request: ModifyRequest): Promise<Definition> { return (await this.full()).modify(request); }
  async info(target: string): Promise<DeviceReport> { return (await this.full()).info(target); }
  async screenshot(uuid: string): Promise<Screenshot> { return (await this.full()).screenshot(uuid); }

  async close(): Promise<void> {
    if (this.host) await (await this.host).close();
  }

  private full(): Promise<Host> {
    this.host ??= import('./host-link.js').then(({ createInProcessHost }) => createInProcessHost(this.definitions.root));
    return this.host;
  }
}
