/*
 * The story engine's memory (story_mem.h).
 */
#include "story_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "newsalert/fault.h"

/* Under AddressSanitizer, what is not given out (the rest of a chunk, free
 * blocks) is poisoned: a use after free or past the chunk's blocks is
 * reported as with malloc (an overflow into the next block given out is
 * not: blocks have no red zones). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/** From this size na_smem_big_alloc() maps the block on its own. */
#define NA_SMEM_BIG_MAP ((size_t)1024 * 1024)

/* The class of @p size (<= NA_SMEM_MAX_BLOCK) and its size in *csize. */
static unsigned class_of(size_t size, size_t *csize) {
    unsigned i = 0;
    size_t c = 16;
    while (c < size) {
        i++;
        c = (i & 1) ? (16u << (i / 2)) * 3 / 2 : 16u << (i / 2);
    }
    *csize = c;
    return i;
}

static size_t align_of(size_t csize) {
    size_t a = csize & (~csize + 1); /* the lowest bit set */
    return a > 64 ? 64 : a;
}

/* A 2 MiB chunk on a 2 MiB boundary, huge pages advised. */
static void *chunk_map(void) {
    size_t len = 2 * NA_SMEM_CHUNK;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    uintptr_t at = ((uintptr_t)p + NA_SMEM_CHUNK - 1) & ~(uintptr_t)(NA_SMEM_CHUNK - 1);
    char *c = (char *)at;
    /* the unaligned head and tail go back */
    if (c > p) {
        munmap(p, (size_t)(c - p));
    }
    if (c + NA_SMEM_CHUNK < p + len) {
        munmap(c + NA_SMEM_CHUNK, (size_t)(p + len - (c + NA_SMEM_CHUNK)));
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(c, NA_SMEM_CHUNK, MADV_HUGEPAGE); /* a hint: may be refused */
#endif
    POISON(c, NA_SMEM_CHUNK);
    return c;
}

void na_smem_init(struct na_smem *m) {
    memset(m, 0, sizeof(*m));
}

void na_smem_cleanup(struct na_smem *m) {
    for (size_t i = 0; i < m->chunks_cnt; i++) {
        UNPOISON(m->chunks[i], NA_SMEM_CHUNK);
        munmap(m->chunks[i], NA_SMEM_CHUNK);
    }
    free(m->chunks);
    memset(m, 0, sizeof(*m));
}

void *na_smem_alloc(struct na_smem *m, size_t size) {
    size_t csize;
    if (na_fault("story_alloc")) {
        return NULL; /* a fault point: the engine's blocks (docs/reliability.md) */
    }
    if (size > NA_SMEM_MAX_BLOCK) {
        return na_smem_big_alloc(size);
    }
    unsigned c = class_of(size ? size : 1, &csize);
    void *p = m->free[c];
    if (p) {
        UNPOISON(p, csize);
        memcpy(&m->free[c], p, sizeof(void *)); /* the next free block */
        m->bytes_in_use += csize;
        return p;
    }
    size_t pad = (size_t)(-(uintptr_t)m->bump & (align_of(csize) - 1));
    if (!m->bump || m->bump_left < pad + csize) {
        if (m->chunks_cnt == m->chunks_cap) {
            size_t cap = m->chunks_cap ? m->chunks_cap * 2 : 16;
            void **n = realloc(m->chunks, cap * sizeof(*n));
            if (!n) {
                return NULL;
            }
            m->chunks = n;
            m->chunks_cap = cap;
        }
        char *ch = chunk_map();
        if (!ch) {
            return NULL;
        }
        m->chunks[m->chunks_cnt++] = ch;
        m->bump = ch;
        m->bump_left = NA_SMEM_CHUNK;
        pad = 0;
    }
    p = m->bump + pad;
    UNPOISON(p, csize);
    m->bump += pad + csize;
    m->bump_left -= pad + csize;
    m->bytes_in_use += csize;
    return p;
}

void na_smem_free(struct na_smem *m, void *p, size_t size) {
    size_t csize;
    if (!p) {
        return;
    }
    if (size > NA_SMEM_MAX_BLOCK) {
        na_smem_big_free(p, size);
        return;
    }
    unsigned c = class_of(size ? size : 1, &csize);
    memcpy(p, &m->free[c], sizeof(void *));
    POISON(p, csize);
    m->free[c] = p;
    m->bytes_in_use -= csize;
}

void *na_smem_realloc(struct na_smem *m, void *p, size_t old_size, size_t new_size) {
    size_t oc = 0, nc = 0;
    if (p && old_size <= NA_SMEM_MAX_BLOCK && new_size <= NA_SMEM_MAX_BLOCK &&
        class_of(old_size ? old_size : 1, &oc) ==
            class_of(new_size ? new_size : 1, &nc)) {
        return p; /* the same class: the block has room */
    }
    void *n = na_smem_alloc(m, new_size);
    if (!n) {
        return NULL;
    }
    if (p) {
        memcpy(n, p, old_size < new_size ? old_size : new_size);
        na_smem_free(m, p, old_size);
    }
    return n;
}

static size_t page_round(size_t size) {
    return (size + 4095) & ~(size_t)4095;
}

void *na_smem_big_alloc(size_t size) {
    if (size < NA_SMEM_BIG_MAP) {
        size_t n = (size + 63) & ~(size_t)63; /* whole cache lines */
        void *p = aligned_alloc(64, n ? n : 64);
        if (p) {
            memset(p, 0, n ? n : 64);
        }
        return p;
    }
    void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, page_round(size), MADV_HUGEPAGE);
#endif
    return p;
}

void na_smem_big_free(void *p, size_t size) {
    if (!p) {
        return;
    }
    if (size < NA_SMEM_BIG_MAP) {
        free(p);
    } else {
        munmap(p, page_round(size));
    }
}
