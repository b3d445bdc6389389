/**
 * @file tracker.h
 * @brief In-order offset commits over out-of-order completion.
 *
 * Every consumed record gets an entry; an entry is finished when all its
 * alerts are delivered or dead-lettered. The offset that may be stored for
 * a partition is that of its lowest unfinished entry (or one past the last
 * entry when all are finished), so a crash re-reads exactly the records
 * whose work was not done: at least once, in order per partition.
 *
 * Entries stay valid while work on them is outstanding, even after their
 * partition is revoked (they are then orphaned: finishing them stores
 * nothing).
 */
#ifndef NEWSALERT_TRACKER_H
#define NEWSALERT_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

typedef struct na_tracker_s na_tracker_t;

struct na_tracker_entry {
    na_tracker_t *tracker; /**< the tracker that made it (na_tracker_done()) */
    int32_t partition;
    int64_t offset;
    unsigned pending; /**< units of work outstanding */
    bool finished;
    bool orphaned;
};

/** @returns new tracker; destroy with na_tracker_destroy(). */
na_tracker_t *na_tracker_new(void);
/** @brief Frees every entry, orphans whose work never ended included (after
 *         it, no entry may be passed to na_tracker_done()); NULL-safe. */
void na_tracker_destroy(na_tracker_t *t);

/**
 * @brief Track a consumed record.
 * @returns borrowed entry, valid until it is finished; NULL on no memory.
 */
struct na_tracker_entry *na_tracker_add(na_tracker_t *t, int32_t partition,
                                        int64_t offset);

/** @brief One unit of work on @p e is done; at zero the entry is finished
 *         (in the tracker that made it: a program with several trackers
 *         cannot finish an entry in the wrong one). */
void na_tracker_done(struct na_tracker_entry *e);

/**
 * @brief The offset to store for @p partition, if it advanced since the
 *        last call. Frees finished entries at the head.
 * @returns true and sets *offset when there is something new to store.
 */
bool na_tracker_committable(na_tracker_t *t, int32_t partition, int64_t *offset);

/** @brief Forget a revoked partition; unfinished entries become orphans. */
void na_tracker_revoke(na_tracker_t *t, int32_t partition);

/** @returns the partitions tracked (for iteration with na_tracker_partition()). */
size_t na_tracker_partitions(const na_tracker_t *t);
int32_t na_tracker_partition(const na_tracker_t *t, size_t i);

/** @returns entries not yet finished (orphans included). */
size_t na_tracker_unfinished(const na_tracker_t *t);

#endif
