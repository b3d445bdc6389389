/**
 * @file merge.h
 * @brief Records of several partitions handed on in one order that does not
 *        depend on how the fetches interleaved them.
 *
 * A replay reads its partitions in parallel; which partition's records
 * come first depends on the timing of each fetch, and the story engine,
 * which groups articles as they come, would group differently from one
 * run to the next. The merge holds each partition's records in their
 * offset order and hands on the oldest head (record timestamp, then
 * partition) only once every partition still being read has one, as a
 * merge of sorted lists does: the same topic gives the same order every
 * run, nearer time order than any one partition's.
 *
 * Not thread-safe (the replay's main thread).
 */
#ifndef NEWSALERT_MERGE_H
#define NEWSALERT_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct na_merge_s na_merge_t;

/** @returns a merge of @p parts partitions (0 .. parts-1), all open; NULL
 *           on no memory. */
na_merge_t *na_merge_new(size_t parts);

/** @brief Free the merge; items still held are not freed (pop them first).
 *         NULL-safe. */
void na_merge_destroy(na_merge_t *m);

/**
 * @brief Queue @p item (@p bytes of it, for na_merge_bytes()) at the end of
 *        partition @p part, stamped @p ts. An item stamped INT64_MIN goes on
 *        as soon as it is its partition's head (an end mark).
 * @returns false on no memory (nothing queued).
 */
bool na_merge_push(na_merge_t *m, size_t part, int64_t ts, size_t bytes, void *item);

/** @brief Partition @p part gets no more items: once its queue is empty the
 *         others go on without it. */
void na_merge_close(na_merge_t *m, size_t part);

/** @returns true when na_merge_close() was called for @p part. */
bool na_merge_closed(const na_merge_t *m, size_t part);

/**
 * @brief The next item: the head with the smallest (stamp, partition) once
 *        every open partition has one.
 * @param part set to the item's partition
 * @returns the item, or NULL when an open partition has none queued (wait
 *          for it) or nothing is held.
 */
void *na_merge_pop(na_merge_t *m, size_t *part);

/** @returns bytes queued for @p part. */
size_t na_merge_bytes(const na_merge_t *m, size_t part);

/** @returns items queued over all partitions. */
size_t na_merge_count(const na_merge_t *m);

#endif
