// The host a command without a daemon answers from: the saved definitions are read here
// (`list -d` needs no parent, `define -p -t` on the mock only the simulated type ids), and the full Host (addon, mock kernel, parents) is made
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
  async stop(uuid: string, options?: { force?: boolean }): Promise<void> { return (await this.full()).stop(uuid, options); }
  async define(request: DefineRequest): Promise<string> {
    // By type on the mock kernel, the parents are the simulated ones, whose type ids are
    // known without making them; anything else needs the full Host.
    // Loaded here, not for `list -d` (a UUID generator loads node:crypto).
    const [{ defineByType, noAttributesError, noTypeError }, { simulatedTypeIds }, { chooseSysKind }] = await Promise.all([
      import('../host/define.js'), import('../host/simulated-types.js'), import('../sys/kind.js')]);
    if ((request.definition === undefined && request.type === undefined) || chooseSysKind() !== 'mock') return (await this.full()).define(request);
    return defineByType(this.definitions, request, (parent, type, attrs) => {
      const ids = simulatedTypeIds(parent);
      if (ids !== undefined && !ids.includes(type)) throw noTypeError(parent, type, ids);
      if (ids !== undefined && attrs.length > 0) throw noAttributesError(parent, type, attrs);
    });
  }
  async undefine(uuid: string, parent?: string, options?: { force?: boolean }): Promise<number> { return (await this.full()).undefine(uuid, parent, options); }
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
