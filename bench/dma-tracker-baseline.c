/* The C baseline of bench/dma-tracker.ts: a DMA mapping tracker in C doing exactly the
 * work the bench asks of DmaStore, on the same addresses in the same order. Usage:
 *   dma-tracker-baseline PAIRS LOOKUPS FINGER(0|1)
 * Builds 65,536 live single-page mappings, warms every figure up once, times one run of
 * each and prints one line: ns per map+unmap pair, per cold lookup, per warm lookup (16
 * in each mapping), per warm lookup (one mapping), per huge map+unmap pair, per lookup
 * among huge mappings, and bytes allocated per live mapping (glibc mallinfo2).
 *
 * The structure is a flat two-level B-tree: sorted leaves of up to 64 mappings (start,
 * end, pointer) under a sorted array of each leaf's last end, binary searched at both
 * levels, with exact 64-bit keys (DmaStore's structure before it became a page table).
 * FINGER=1 also keeps a finger (the last search's place, checked before searching);
 * FINGER=0 searches from the top on every call, as a plain B-tree does. Overlap checks
 * and walks judge by the leaf's keys, never visiting a mapping outside the range.
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
#define CHUNK_MAX 64

typedef struct mapping {
  uint64_t iova, size, vaddr;
  uint32_t prot;
} mapping;

typedef struct chunk {
  int len;
  uint64_t start[CHUNK_MAX + 1], end[CHUNK_MAX + 1];
  mapping *m[CHUNK_MAX + 1];
} chunk;

typedef struct store {
  chunk **chunks;
  uint64_t *ends; /* each chunk's last end */
  int n, cap;
  int fc, fi; /* the finger */
  int use_finger;
  long total;
} store;

static void die(const char *what) {
  fprintf(stderr, "dma-tracker-baseline: %s\n", what);
  exit(1);
}

static int upper_bound(const uint64_t *list, uint64_t value, int lo, int hi) {
  while (lo < hi) {
    int mid = (int)((unsigned)(lo + hi) >> 1);
    if (list[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Finger to the first mapping ending above q; 0 (finger unmoved) when none does. */
static int seek(store *s, uint64_t q) {
  int c = s->fc;
  if (s->use_finger && c < s->n) {
    chunk *ch = s->chunks[c];
    int i = s->fi;
    int below_ok = i > 0 ? ch->end[i - 1] <= q : c > 0 ? s->ends[c - 1] <= q : 1;
    if (below_ok) {
      if (q < ch->end[i]) return 1;
      if (++i == ch->len) {
        if (++c == s->n) return 0;
        ch = s->chunks[c];
        i = 0;
      }
      if (q < ch->end[i]) {
        s->fc = c;
        s->fi = i;
        return 1;
      }
    }
  }
  c = upper_bound(s->ends, q, 0, s->n);
  if (c == s->n) return 0;
  s->fc = c;
  s->fi = upper_bound(s->chunks[c]->end, q, 0, s->chunks[c]->len);
  return 1;
}

/* The first mapping ending above q that starts below end, judged by the leaf's own key
 * (no visit to a mapping outside the range). */
static mapping *first_below(store *s, uint64_t q, uint64_t end) {
  if (!seek(s, q)) return NULL;
  chunk *ch = s->chunks[s->fc];
  return ch->start[s->fi] < end ? ch->m[s->fi] : NULL;
}

static mapping *find(store *s, uint64_t start, uint64_t size) {
  return first_below(s, start, size == 0 ? start : start + size);
}

static mapping *translate(store *s, uint64_t q, uint64_t *offset) {
  if (!seek(s, q)) return NULL;
  chunk *ch = s->chunks[s->fc];
  if (ch->start[s->fi] > q) return NULL;
  *offset = q - ch->start[s->fi];
  return ch->m[s->fi];
}

static void split(store *s, int c) {
  chunk *ch = s->chunks[c];
  int half = ch->len >> 1;
  chunk *up = malloc(sizeof *up);
  if (!up) die("out of memory");
  up->len = ch->len - half;
  memcpy(up->start, ch->start + half, up->len * sizeof(uint64_t));
  memcpy(up->end, ch->end + half, up->len * sizeof(uint64_t));
  memcpy(up->m, ch->m + half, up->len * sizeof(mapping *));
  ch->len = half;
  if (s->n == s->cap) {
    s->cap *= 2;
    s->chunks = realloc(s->chunks, s->cap * sizeof(chunk *));
    s->ends = realloc(s->ends, s->cap * sizeof(uint64_t));
    if (!s->chunks || !s->ends) die("out of memory");
  }
  memmove(s->chunks + c + 2, s->chunks + c + 1, (s->n - c - 1) * sizeof(chunk *));
  memmove(s->ends + c + 2, s->ends + c + 1, (s->n - c - 1) * sizeof(uint64_t));
  s->chunks[c + 1] = up;
  s->n++;
  s->ends[c] = ch->end[half - 1];
  s->ends[c + 1] = up->end[up->len - 1];
  if (s->fc == c && s->fi >= half) {
    s->fc = c + 1;
    s->fi -= half;
  } else if (s->fc > c) {
    s->fc++;
  }
}

static void insert(store *s, mapping *m) {
  uint64_t start = m->iova, end = m->iova + m->size;
  int c, at;
  if (seek(s, start)) {
    c = s->fc;
    at = s->fi;
    if (s->chunks[c]->start[at] < end) die("overlapping insert");
  } else if (s->n > 0) {
    c = s->n - 1;
    at = s->chunks[c]->len;
  } else {
    s->chunks[0] = calloc(1, sizeof(chunk));
    if (!s->chunks[0]) die("out of memory");
    s->n = 1;
    c = 0;
    at = 0;
  }
  chunk *ch = s->chunks[c];
  int len = ch->len;
  memmove(ch->start + at + 1, ch->start + at, (len - at) * sizeof(uint64_t));
  memmove(ch->end + at + 1, ch->end + at, (len - at) * sizeof(uint64_t));
  memmove(ch->m + at + 1, ch->m + at, (len - at) * sizeof(mapping *));
  ch->start[at] = start;
  ch->end[at] = end;
  ch->m[at] = m;
  ch->len = len + 1;
  if (at == len) s->ends[c] = end;
  s->total++;
  s->fc = c;
  s->fi = at;
  if (ch->len > CHUNK_MAX) split(s, c);
}

static void remove_mapping(store *s, mapping *m) {
  int c = s->fc, at = s->fi;
  chunk *ch = c < s->n ? s->chunks[c] : NULL;
  if (!s->use_finger || !ch || ch->m[at] != m) {
    if (s->use_finger && ch && at > 0 && ch->m[at - 1] == m) {
      at--;
    } else {
      if (!seek(s, m->iova)) die("remove of a mapping not in the store");
      c = s->fc;
      at = s->fi;
      ch = s->chunks[c];
      if (ch->m[at] != m) die("remove of a mapping not in the store");
    }
  }
  int len = ch->len - 1;
  memmove(ch->start + at, ch->start + at + 1, (len - at) * sizeof(uint64_t));
  memmove(ch->end + at, ch->end + at + 1, (len - at) * sizeof(uint64_t));
  memmove(ch->m + at, ch->m + at + 1, (len - at) * sizeof(mapping *));
  ch->len = len;
  s->total--;
  if (len == 0) {
    free(ch);
    memmove(s->chunks + c, s->chunks + c + 1, (s->n - c - 1) * sizeof(chunk *));
    memmove(s->ends + c, s->ends + c + 1, (s->n - c - 1) * sizeof(uint64_t));
    s->n--;
    s->fc = c;
    s->fi = 0;
    return;
  }
  if (at == len) {
    s->ends[c] = ch->end[len - 1];
    s->fc = c + 1;
    s->fi = 0;
  } else {
    s->fc = c;
    s->fi = at;
  }
}

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

static store *new_store(int use_finger) {
  store *s = calloc(1, sizeof *s);
  if (!s) die("out of memory");
  s->cap = 16;
  s->chunks = malloc(s->cap * sizeof(chunk *));
  s->ends = malloc(s->cap * sizeof(uint64_t));
  if (!s->chunks || !s->ends) die("out of memory");
  s->use_finger = use_finger;
  return s;
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
