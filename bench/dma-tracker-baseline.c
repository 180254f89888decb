/* The C baseline of bench/dma-tracker.ts: a DMA mapping tracker in C doing exactly the
 * work the bench asks of DmaStore, on the same addresses in the same order. Usage:
 *   dma-tracker-baseline PAIRS LOOKUPS FINGER(0|1)
 * Builds 65,536 live single-page mappings, warms every figure up once, times one run of
 * each and prints one line: ns per map+unmap pair, per cold lookup, per warm lookup (16
 * in each mapping), per warm lookup (one mapping), per huge map+unmap pair, per lookup
 * among huge mappings, and bytes allocated per live mapping (glibc mallinfo2).
 *
 * The tracker is built in one of two forms: a B-tree (dma-btree.h; FINGER=0 is
 * libvfio-user's shape, a search from the top per call but translate's last hit checked
 * first; FINGER=1 adds a finger to every call), or with -DPAGE_TABLE the page table
 * DmaStore is (dma-pagetable.h; FINGER is ignored).
 * Mappings are malloc'd at MAP and freed at UNMAP, as the ioctl path allocates one. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE 65536
#define PAGE 4096ull
#define STRIDE (2 * PAGE)

typedef struct mapping {
  uint64_t iova, size, vaddr;
  uint32_t prot;
} mapping;

static void die(const char *what) {
  fprintf(stderr, "dma-tracker-baseline: %s\n", what);
  exit(1);
}

#ifdef PAGE_TABLE
#include "dma-pagetable.h"
#else
#define CHUNK_MAX 64
#include "dma-btree.h"
#endif

/* VFIO_IOMMU_MAP_DMA's steps on the store: overlap check, a new mapping, insert. */
static int map_dma(store *s, uint64_t iova, uint64_t size) {
  if (find(s, iova, size)) return -1;
  mapping *m = malloc(sizeof *m);
  if (!m) die("out of memory");
  m->iova = iova;
  m->size = size;
  m->vaddr = 0x700000000000ull + iova;
  m->prot = 3;
  insert(s, m);
  return 0;
}

/* VFIO_IOMMU_UNMAP_DMA (v2)'s steps: both ends checked, then every mapping inside removed. */
static int64_t unmap_dma(store *s, uint64_t iova, uint64_t size) {
  uint64_t end = iova + size;
  mapping *f = find(s, iova, 1);
  if (f && f->iova != iova) return -1;
  mapping *l = find(s, end - 1, 0);
  if (l && l->iova + l->size != end) return -1;
  int64_t unmapped = 0;
  for (mapping *m = first_below(s, iova, end); m;) {
    mapping *next = first_below(s, m->iova + m->size, end);
    unmapped += (int64_t)m->size;
    remove_mapping(s, m);
    free(m);
    m = next;
  }
  return unmapped;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The bench's xorshift32 slots: the same numbers as randomSlots() in dma-tracker.ts. */
static uint32_t *random_slots(int count, uint32_t seed, uint32_t modulo) {
  uint32_t *out = malloc(count * sizeof *out);
  if (!out) die("out of memory");
  uint32_t x = seed ? seed : 1;
  for (int i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = x % modulo;
  }
  return out;
}

static volatile uint64_t sink;

static double pairs(store *s, const uint64_t *iovas, int mask, uint64_t size, long n) {
  double start = now_ns();
  for (long i = 0; i < n; i++) {
    uint64_t iova = iovas[i & mask];
    if (map_dma(s, iova, size) != 0) die("map failed");
    if (unmap_dma(s, iova, size) != (int64_t)size) die("unmap failed");
  }
  return (now_ns() - start) / (double)n;
}

static double lookups(store *s, const uint64_t *iovas, int mask, long n) {
  uint64_t acc = 0, offset;
  double start = now_ns();
  for (long i = 0; i < n; i++) {
    if (!translate(s, iovas[i & mask], &offset)) die("not mapped");
    acc += offset;
  }
  double ns = (now_ns() - start) / (double)n;
  sink += acc;
  return ns;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PAIRS LOOKUPS FINGER(0|1)\n", argv[0]);
    return 2;
  }
  long n_pairs = atol(argv[1]), n_lookups = atol(argv[2]);
  int use_finger = atoi(argv[3]);

  struct mallinfo2 before = mallinfo2();
  store *s = new_store(use_finger);
  for (uint64_t i = 0; i < LIVE; i++)
    if (map_dma(s, i * STRIDE, PAGE) != 0) die("populate failed");
  struct mallinfo2 after = mallinfo2();
  double bytes = (double)(after.uordblks - before.uordblks) / LIVE;

  /* The same addresses as the TS side builds. */
  uint32_t *slots = random_slots(LIVE, 12345, LIVE);
  uint64_t *gaps = malloc(LIVE * sizeof *gaps);
  for (int i = 0; i < LIVE; i++) gaps[i] = slots[i] * STRIDE + PAGE;
  uint32_t *lslots = random_slots(LIVE, 999, LIVE);
  uint64_t *cold = malloc(LIVE * sizeof *cold);
  for (int i = 0; i < LIVE; i++) cold[i] = lslots[i] * STRIDE + (uint64_t)((i * 8) % 4096);
  int warm_count = 1 << 20;
  uint64_t *warm16 = malloc(warm_count * sizeof *warm16);
  for (int i = 0; i < warm_count; i++) warm16[i] = lslots[(i >> 4) & (LIVE - 1)] * STRIDE + (uint64_t)(i & 15) * 256;
  uint64_t *warm1 = malloc(4096 * sizeof *warm1);
  for (int i = 0; i < 4096; i++) warm1[i] = lslots[0] * STRIDE + (uint64_t)((i * 8) % 4096);

  /* Huge mappings: 8 of 16 GiB, 32 GiB apart (guest RAM); a 1 GiB map+unmap in a gap. */
  store *h = new_store(use_finger);
  const uint64_t GiB = 1ull << 30;
  for (uint64_t i = 0; i < 8; i++)
    if (map_dma(h, i * 32 * GiB, 16 * GiB) != 0) die("huge populate failed");
  uint64_t huge_gaps[8], *huge_lookups = malloc(LIVE * sizeof *huge_lookups);
  for (int i = 0; i < 8; i++) huge_gaps[i] = (uint64_t)i * 32 * GiB + 16 * GiB + (uint64_t)(i & 3) * GiB;
  for (int i = 0; i < LIVE; i++) huge_lookups[i] = (uint64_t)(lslots[i] & 7) * 32 * GiB + ((uint64_t)lslots[i] * 262147ull * 64) % (16 * GiB);

  for (int warm = 1; warm >= 0; warm--) {
    long p = warm ? n_pairs / 4 : n_pairs, l = warm ? n_lookups / 4 : n_lookups;
    double r_pairs = pairs(s, gaps, LIVE - 1, PAGE, p);
    double r_cold = lookups(s, cold, LIVE - 1, l);
    double r_warm16 = lookups(s, warm16, warm_count - 1, l);
    double r_warm1 = lookups(s, warm1, 4095, l);
    double r_huge_pairs = pairs(h, huge_gaps, 7, GiB, p);
    double r_huge_lookups = lookups(h, huge_lookups, LIVE - 1, l);
    if (!warm)
      printf("%.3f %.3f %.3f %.3f %.3f %.3f %.1f\n", r_pairs, r_cold, r_warm16, r_warm1, r_huge_pairs, r_huge_lookups, bytes);
  }
  if (s->total != LIVE || h->total != 8) die("lost mappings");
  return 0;
}
