// The serial console of a 6.12 guest that died before /init, as QEMU (TCG, -smp 2) gave it
// on a loaded machine: an int3 oops in hrtimer_start_range_ns, then the panic. Kept to
// test that such a boot is told apart from test failures (crash.ts).
export const crashedBootLog = [
  '[    0.000000] Linux version 6.12.57+deb12-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1~bpo12+1 (2025-11-05)',
  '[    0.000000] Command line: console=ttyS0 intel_iommu=on panic=-1 loglevel=4',
  '[    0.412871] smpboot: CPU0: AMD QEMU TCG CPU version 2.5+ (family: 0xf, model: 0x6b, stepping: 0x1)',
  '[    0.873310] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI',
  '[    0.873310] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.57+deb12-amd64 #1  Debian 6.12.57-1~bpo12+1',
  '[    0.873310] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014',
  '[    0.873310] RIP: 0010:hrtimer_start_range_ns+0x1e/0x380',
  '[    0.873310] Code: 90 90 90 90 90 90 90 90 90 90 90 90 90 66 0f 1f 00 0f 1f 44 00 00 41 57 41 56 41 55 41 54 cc',
  '[    0.873310] Call Trace:',
  '[    0.873310]  <TASK>',
  '[    0.873310]  tick_nohz_restart_sched_tick+0x6f/0x90',
  '[    0.873310]  tick_nohz_idle_exit+0xa5/0x100',
  '[    0.873310]  do_idle+0x1e4/0x230',
  '[    0.873310]  cpu_startup_entry+0x29/0x30',
  '[    0.873310]  start_secondary+0x11e/0x140',
  '[    0.873310]  common_startup_64+0x13e/0x141',
  '[    0.873310]  </TASK>',
  '[    0.873310] ---[ end trace 0000000000000000 ]---',
  '[    0.873310] Kernel panic - not syncing: Attempted to kill the idle task!',
  '[    0.873310] ---[ end Kernel panic - not syncing: Attempted to kill the idle task! ]---',
  '',
].join('\r\n');
