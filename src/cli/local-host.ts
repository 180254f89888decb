// The host a command without a daemon answers from: the saved definitions are read and
// written here (`list -d` and `undefine` need no parent; `define -p -t` and `modify` on
// the mock kernel only the simulated type ids), and the full Host (addon, mock kernel,
// parents) is made only when a call needs parents or live devices, and then once.
import type { Definition, DefineRequest, DeviceReport, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo } from '../host/api.js';
import type { ParentChecks } from '../host/definition-edits.js';
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
    const checks = request.definition === undefined && request.type === undefined ? undefined : await simulatedChecks();
    if (!checks) return (await this.full()).define(request);
    // Loaded here, not for `list -d`.
    const { defineByType } = await import('../host/define.js');
    return defineByType(this.definitions, request, (parent, type, attrs) => {
      checks.type(parent, type);
      checks.attributes(parent, type, attrs);
    });
  }
  /** No allocation holds a vGPU of this process (only the daemon's node agents make them), so force changes nothing here. */
  async undefine(uuid: string, parent?: string): Promise<number> {
    const { removeDefinitions } = await import('../host/definition-edits.js');
    return removeDefinitions(this.definitions, uuid, parent);
  }
  async modify(request: ModifyRequest): Promise<Definition> {
    const checks = await simulatedChecks();
    if (!checks) return (await this.full()).modify(request);
    const { modifyDefinition } = await import('../host/definition-edits.js');
    return modifyDefinition(this.definitions, request, checks);
  }
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

/**
 * On the mock kernel the parents are the simulated ones, whose type ids are known without
 * making them: the checks the full Host would make, answered from those ids. Undefined on
 * a real kernel, where only the full Host knows the parents.
 */
async function simulatedChecks(): Promise<ParentChecks | undefined> {
  const [{ noAttributesError, noTypeError }, { simulatedTypeIds }, { chooseSysKind }] = await Promise.all([
    import('../host/define.js'), import('../host/simulated-types.js'), import('../sys/kind.js')]);
  if (chooseSysKind() !== 'mock') return undefined;
  return {
    type(parent, type) {
      const ids = simulatedTypeIds(parent);
      if (ids !== undefined && !ids.includes(type)) throw noTypeError(parent, type, ids);
    },
    attributes(parent, type, attrs) {
      if (attrs.length > 0 && simulatedTypeIds(parent) !== undefined) throw noAttributesError(parent, type, attrs);
    },
  };
}
