/* The page-table tracker of dma-tracker-baseline.c: DmaStore's algorithm in C. A radix
 * tree of 512-entry tables indexed by the 4 KiB page number, 9 bits a level, as tall as
 * the highest mapping needs; an entry is empty, a table (low bit set) or a mapping that
 * covers the entry's whole span (a superpage). Each table has a bitmap of its used
 * entries for walks in IOVA order. translate() remembers its last hit, as DmaStore does.
 * Where DmaStore reads a mapping's first page from its own array, this reads the
 * mapping itself (C's natural way: the entry is the pointer). */
#define BITS 9
#define FANOUT (1 << BITS)
#define WORDS (FANOUT / 64)
#define TABLE_BIT ((uintptr_t)1)

typedef struct table {
  uintptr_t e[FANOUT];
  uint64_t used[WORDS];
  int fill;
} table;

typedef struct store {
  table *root;
  int height;
  long total;
  mapping *hit;
} store;

static inline int index_of(uint64_t page, int level) { return (int)((page >> (BITS * level)) & (FANOUT - 1)); }
static inline table *table_of(uintptr_t e) { return (table *)(e & ~TABLE_BIT); }

static table *new_table(void) {
  table *t = calloc(1, sizeof *t);
  if (!t) die("out of memory");
  return t;
}

static void set_entry(table *t, int i, uintptr_t v) {
  uintptr_t was = t->e[i];
  t->e[i] = v;
  if ((was == 0) != (v == 0)) {
    t->used[i >> 6] ^= 1ull << (i & 63);
    t->fill += v ? 1 : -1;
  }
}

/* The first used entry at `from` or later, or -1. */
static int next_used(const table *t, int from) {
  if (from >= FANOUT) return -1;
  int w = from >> 6;
  uint64_t word = t->used[w] & (~0ull << (from & 63));
  while (!word) {
    if (++w == WORDS) return -1;
    word = t->used[w];
  }
  return (w << 6) + __builtin_ctzll(word);
}

static int covers(const store *s, uint64_t page) { return (page >> (BITS * s->height)) == 0; }

static mapping *mapping_at(const store *s, uint64_t page) {
  if (!covers(s, page)) return NULL;
  const table *t = s->root;
  for (int level = s->height - 1;; level--) {
    uintptr_t e = t->e[index_of(page, level)];
    if (!(e & TABLE_BIT)) return (mapping *)e;
    t = table_of(e);
  }
}

static mapping *leftmost(const table *t) {
  for (;;) {
    uintptr_t e = t->e[next_used(t, 0)];
    if (!(e & TABLE_BIT)) return (mapping *)e;
    t = table_of(e);
  }
}

static mapping *first_in(const table *t, int level, uint64_t base, uint64_t page) {
  int from = page > base ? (int)((page - base) >> (BITS * level)) : 0;
  for (int i = next_used(t, from); i >= 0; i = next_used(t, i + 1)) {
    uintptr_t e = t->e[i];
    if (!(e & TABLE_BIT)) return (mapping *)e;
    mapping *m = first_in(table_of(e), level - 1, base + ((uint64_t)i << (BITS * level)), page);
    if (m) return m;
  }
  return NULL;
}

/* The first mapping with a page at or after `page`: down its own path first, as DmaStore. */
static mapping *first_at_or_after(const store *s, uint64_t page) {
  if (!covers(s, page)) return NULL;
  const table *t = s->root;
  for (int level = s->height - 1;; level--) {
    int i = index_of(page, level);
    uintptr_t e = t->e[i];
    if (e == 0) {
      int j = next_used(t, i + 1);
      if (j < 0) break;
      uintptr_t after = t->e[j];
      return (after & TABLE_BIT) ? leftmost(table_of(after)) : (mapping *)after;
    }
    if (!(e & TABLE_BIT)) return (mapping *)e;
    t = table_of(e);
  }
  return first_in(s->root, s->height - 1, 0, page);
}

static mapping *first_below(store *s, uint64_t q, uint64_t end) {
  mapping *m = first_at_or_after(s, q / PAGE);
  return m && m->iova < end ? m : NULL;
}

static mapping *find(store *s, uint64_t start, uint64_t size) {
  return first_below(s, start, size == 0 ? start : start + size);
}

static mapping *translate(store *s, uint64_t q, uint64_t *offset) {
  mapping *m = s->hit;
  if (!m || q < m->iova || q - m->iova >= m->size) {
    m = mapping_at(s, q / PAGE);
    if (!m) return NULL;
    s->hit = m;
  }
  *offset = q - m->iova;
  return m;
}

/* The entries of [first, end) in a table at `level` covering pages from `base`. */
static inline int first_index(int level, uint64_t base, uint64_t first) {
  return first > base ? (int)((first - base) >> (BITS * level)) : 0;
}
static inline int end_index(int level, uint64_t base, uint64_t end) {
  uint64_t n = (end - base + (1ull << (BITS * level)) - 1) >> (BITS * level);
  return n < FANOUT ? (int)n : FANOUT;
}

static int occupied(const table *t, int level, uint64_t base, uint64_t first, uint64_t end) {
  uint64_t span = 1ull << (BITS * level);
  for (int i = first_index(level, base, first), to = end_index(level, base, end); i < to; i++) {
    uintptr_t e = t->e[i];
    if (e == 0) continue;
    if (!(e & TABLE_BIT)) return 1;
    uint64_t start = base + i * span;
    if ((first <= start && start + span <= end) || occupied(table_of(e), level - 1, start, first, end)) return 1;
  }
  return 0;
}

static void fill(table *t, int level, uint64_t base, uint64_t first, uint64_t end, uintptr_t value) {
  uint64_t span = 1ull << (BITS * level);
  for (int i = first_index(level, base, first), to = end_index(level, base, end); i < to; i++) {
    uint64_t start = base + i * span;
    if (first <= start && start + span <= end) {
      set_entry(t, i, value);
      continue;
    }
    if (t->e[i] == 0) set_entry(t, i, (uintptr_t)new_table() | TABLE_BIT);
    fill(table_of(t->e[i]), level - 1, start, first, end, value);
  }
}

static void clear(table *t, int level, uint64_t base, uint64_t first, uint64_t end) {
  uint64_t span = 1ull << (BITS * level);
  for (int i = first_index(level, base, first), to = end_index(level, base, end); i < to; i++) {
    uint64_t start = base + i * span;
    if (first <= start && start + span <= end) {
      set_entry(t, i, 0);
      continue;
    }
    table *child = table_of(t->e[i]);
    clear(child, level - 1, start, first, end);
    if (child->fill == 0) {
      set_entry(t, i, 0);
      free(child);
    }
  }
}

static void insert(store *s, mapping *m) {
  uint64_t first = m->iova / PAGE, end = (m->iova + m->size) / PAGE;
  while (!covers(s, end - 1)) {
    if (s->root->fill) {
      table *top = new_table();
      set_entry(top, 0, (uintptr_t)s->root | TABLE_BIT);
      s->root = top;
    }
    s->height++;
  }
  if (occupied(s->root, s->height - 1, 0, first, end)) die("overlapping insert");
  fill(s->root, s->height - 1, 0, first, end, (uintptr_t)m);
  s->total++;
  s->hit = NULL;
}

static void remove_mapping(store *s, mapping *m) {
  if (mapping_at(s, m->iova / PAGE) != m) die("remove of a mapping not in the store");
  clear(s->root, s->height - 1, 0, m->iova / PAGE, (m->iova + m->size) / PAGE);
  s->total--;
  s->hit = NULL;
  if (s->total == 0) s->height = 1;
}

static store *new_store(int use_finger) {
  (void)use_finger;
  store *s = calloc(1, sizeof *s);
  if (!s) die("out of memory");
  s->root = new_table();
  s->height = 1;
  return s;
}
