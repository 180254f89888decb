// A listener of another user on the socket path (the folder was world-writable) is not
// our daemon: the client checks SO_PEERCRED and refuses it before sending a byte.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { tempSocket } from './fixtures/sockets.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

// Answers every line with a well-formed hello, and reports on stdout each byte count it got.
const impostor = `
const net = require('net');
net.createServer((s) => {
  s.on('data', (d) => {
    process.stdout.write('got ' + d.length + '\\n');
    s.write(JSON.stringify({ id: 1, result: { protocol: 1, server: 'vfio-vgpu', version: '0', pid: 1, startedAt: '', methods: [], host: {} } }) + '\\n');
  });
}).listen(process.argv[1], () => process.stdout.write('ready\\n'));
`;

describe('daemon client and an impostor', { skip: asRoot ? false : 'needs root to run a listener as nobody' }, () => {
  let temp: ReturnType<typeof tempSocket>;
  let child: ChildProcess | undefined;
  beforeEach(() => { temp = tempSocket(); });
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
    temp.cleanup();
  });

  it('refuses a listener run by another uid, naming the socket and the uid, and sends it nothing', async () => {
    const dir = join(temp.dir, 'shared');
    mkdirSync(dir);
    chmodSync(temp.dir, 0o755);
    chownSync(dir, NOBODY, NOBODY);
    const socketPath = join(dir, 'vgpu.sock');
    const out: string[] = [];
    const started = spawn(process.execPath, ['-e', impostor, socketPath], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
    child = started;
    await new Promise<void>((resolve, reject) => {
      started.stdout?.setEncoding('utf8').on('data', (text: string) => {
        out.push(text);
        if (out.join('').includes('ready')) resolve();
      });
      started.once('exit', (code) => reject(new Error(`impostor exited with ${code}`)));
    });
    await assert.rejects(DaemonClient.connect(socketPath), {
      code: 'EPERM',
      message: `refusing the daemon at ${socketPath}: it runs as uid ${NOBODY}, neither root nor you (uid 0)`,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(out.join(''), 'ready\n');
  });
});
