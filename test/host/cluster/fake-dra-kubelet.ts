// A fake kubelet's plugin watcher and DRA manager, over the real gRPC protocols on unix
// sockets: it finds <registry>/*-reg.sock, asks GetInfo, checks the answer as the
// kubelet does (type DRAPlugin, an endpoint, a version it speaks: v1 first, else
// v1beta1), says so with NotifyRegistrationStatus, and then calls
// NodePrepareResources / NodeUnprepareResources on the plugin's endpoint.
import { readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import { draApi, pluginRegistrationApi, type DraVersion } from '../../../src/host/cluster/proto/load.js';
import { dialSocket, unaryCall } from '../../../src/host/cluster/grpc-unix.js';
import type { DraClaim, NodePrepareResourcesResponse, NodeUnprepareResourcesResponse, PluginInfo } from '../../../src/host/cluster/proto/messages.js';

export interface DraRegistration {
  info: PluginInfo;
  version: DraVersion;
  client: Client;
}

export class FakeDraKubelet {
  readonly plugins = new Map<string, DraRegistration>();

  constructor(readonly registryDir: string) {}

  /** One pass of the plugin watcher over the registry folder. */
  async scan(): Promise<void> {
    for (const name of readdirSync(this.registryDir)) {
      if (!name.endsWith('-reg.sock')) continue;
      const { Registration } = pluginRegistrationApi();
      const reg = dialSocket<Client>(Registration, join(this.registryDir, name));
      try {
        const info = await unaryCall<object, PluginInfo>(reg, 'GetInfo', {});
        let error = '';
        if (info.type !== 'DRAPlugin') error = `plugin type ${info.type} is not DRAPlugin`;
        else if (!isAbsolute(info.endpoint)) error = `endpoint ${info.endpoint} is not an absolute path`;
        const version: DraVersion | undefined = info.supported_versions.includes('v1.DRAPlugin') ? 'v1'
          : info.supported_versions.includes('v1beta1.DRAPlugin') ? 'v1beta1' : undefined;
        if (!error && !version) error = `none of the versions ${info.supported_versions.join(', ')} is supported`;
        await unaryCall(reg, 'NotifyRegistrationStatus', { plugin_registered: error === '', error });
        if (error) throw new Error(error);
        this.plugins.get(info.name)?.client.close();
        this.plugins.set(info.name, { info, version: version!, client: dialSocket<Client>(draApi(version!).DRAPlugin, info.endpoint) });
      } finally {
        reg.close();
      }
    }
  }

  /** Talks to a plugin in the given version (the registration's own unless told). */
  prepare(driver: string, claims: DraClaim[], version?: DraVersion): Promise<NodePrepareResourcesResponse> {
    return unaryCall(this.client(driver, version), 'NodePrepareResources', { claims });
  }

  unprepare(driver: string, claims: DraClaim[], version?: DraVersion): Promise<NodeUnprepareResourcesResponse> {
    return unaryCall(this.client(driver, version), 'NodeUnprepareResources', { claims });
  }

  close(): void {
    for (const p of this.plugins.values()) p.client.close();
    this.plugins.clear();
  }

  private client(driver: string, version?: DraVersion): Client {
    const plugin = this.plugins.get(driver);
    if (!plugin) throw new Error(`no DRA plugin ${driver} registered`);
    if (version === undefined || version === plugin.version) return plugin.client;
    return dialSocket<Client>(draApi(version).DRAPlugin, plugin.info.endpoint);
  }
}
