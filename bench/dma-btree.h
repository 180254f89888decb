/* The B-tree tracker of dma-tracker-baseline.c: sorted leaves of up to 64 mappings
 * (start, end, pointer) under a sorted array of each leaf's last end, binary searched at
 * both levels, with exact 64-bit keys. translate() checks its last hit before searching,
 * as libvfio-user's dma_addr_to_sgl checks its last region (and as DmaStore does): with
 * use_finger 0 this is libvfio-user's shape, every other call searching from the top.
 * use_finger 1 also keeps a finger (the last search's place, checked before searching)
 * for every call: the stronger C baseline. Overlap checks and walks judge by the leaf's
 * keys, never visiting a mapping outside the range. */
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
  mapping *hit; /* translate()'s last hit; NULL after any insert or remove */
  long total;
} store;

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
  mapping *m = s->hit;
  if (!m || q < m->iova || q - m->iova >= m->size) {
    if (!seek(s, q)) return NULL;
    chunk *ch = s->chunks[s->fc];
    if (ch->start[s->fi] > q) return NULL;
    m = s->hit = ch->m[s->fi];
  }
  *offset = q - m->iova;
  return m;
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
  s->hit = NULL;
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
  s->hit = NULL;
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
