/*
 * The story engine's memory: its many small arrays (postings, stories'
 * feature lists and indexes, the stories themselves) carved from 2 MiB
 * chunks that the kernel may back with huge pages, and its large arrays
 * (the dictionary) mapped so too.
 *
 * Why: at 10,000 open stories the engine's data are ~190 MB spread over
 * the heap, and assigning an article touches a few thousand places in
 * them; with 4 KiB pages nearly each one is a TLB miss too. Blocks of one
 * engine sit together in few huge pages instead.
 *
 * Blocks come in size classes (16, 24, 32, 48, 64, 96, ... 256 KiB: powers
 * of two and one and a half times them, which the engine's arrays fill
 * exactly); a freed block goes to its class's free list and is the next
 * one given out of that class. Chunks go back to the system only at
 * na_smem_cleanup(): memory follows the most the engine held at once, not
 * its history. Larger blocks are mapped on their own (na_smem_big_*).
 * Not thread-safe: one per engine, used by the engine's thread.
 */
#ifndef NEWSALERT_STORY_MEM_H
#define NEWSALERT_STORY_MEM_H

#include <stdbool.h>
#include <stddef.h>

/** Size classes: 16 << (i / 2), times 3/2 for odd i, up to 256 KiB. */
#define NA_SMEM_CLASSES 29u
/** Largest block served from chunks (bytes). */
#define NA_SMEM_MAX_BLOCK ((size_t)256 * 1024)
/** Chunk size and alignment (bytes): a huge page on x86-64 and arm64. */
#define NA_SMEM_CHUNK ((size_t)2 * 1024 * 1024)

struct na_smem {
    void *free[NA_SMEM_CLASSES]; /* free blocks of each class, linked */
    char *bump;                  /* the rest of the newest chunk */
    size_t bump_left;
    void **chunks;
    size_t chunks_cnt, chunks_cap;
    size_t bytes_in_use; /* in blocks given out, rounded to their class */
};

void na_smem_init(struct na_smem *m);
/** Give every chunk back: the blocks given out are gone with them, except
 *  large ones (over NA_SMEM_MAX_BLOCK), which must be freed one by one. */
void na_smem_cleanup(struct na_smem *m);

/**
 * @brief A block of at least @p size bytes, aligned to the largest power
 *        of two, at most 64, that divides its class's size (a class of a
 *        multiple of 64 bytes: to a cache line). Larger than
 *        NA_SMEM_MAX_BLOCK: na_smem_big_alloc()'s (then zeroed).
 * @returns the block (not zeroed), or NULL (no memory).
 */
void *na_smem_alloc(struct na_smem *m, size_t size);
/** @brief Free @p p (NULL: nothing), allocated with @p size bytes. */
void na_smem_free(struct na_smem *m, void *p, size_t size);
/**
 * @brief Move @p p (@p old_size bytes; NULL with 0) into a block of
 *        @p new_size bytes, keeping the first min(old, new) bytes.
 * @returns the new block, or NULL with @p p untouched (no memory).
 */
void *na_smem_realloc(struct na_smem *m, void *p, size_t old_size, size_t new_size);

/** @brief A zeroed block of @p size bytes for a large array, on a cache
 *         line: mapped on its own (huge pages advised) from 1 MiB, else
 *         aligned_alloc(). NULL: no memory. Free with na_smem_big_free()
 *         and the same size. */
void *na_smem_big_alloc(size_t size);
void na_smem_big_free(void *p, size_t size);

#endif
