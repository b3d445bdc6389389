/**
 * @file workq.h
 * @brief A pool of worker threads that run one function over items, handed
 *        back in the order they were submitted: the stages of work that can
 *        run on any core (decoding and classifying articles) spread over
 *        the cores, while what must see items in order (story grouping,
 *        offsets) stays on the thread that submits and takes them.
 *
 * Bounded: at most @p capacity items are submitted and not yet taken;
 * na_workq_submit() says when the queue is full, so the caller stops
 * reading input (bounded memory, no unbounded prefetch).
 *
 * Threading: one thread submits and takes (the owner); the workers run
 * @p fn concurrently, each on its own item. An item belongs to the worker
 * from submit until it is done, then to the owner again (na_workq_take()
 * returns it). With 0 threads, na_workq_submit() runs @p fn at once on the
 * owner's thread (a queue that is the plain loop, for tests and 1-core use).
 */
#ifndef NEWSALERT_WORKQ_H
#define NEWSALERT_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

typedef struct na_workq_s na_workq_t;

/** The work on one item; runs on a worker thread. */
typedef void(na_work_fn)(void *item, void *ctx);

/** Most worker threads of one queue. */
#define NA_WORKQ_MAX_THREADS 64

/**
 * @brief Start @p threads workers (0 to NA_WORKQ_MAX_THREADS) running
 *        @p fn(item, @p ctx), for at most @p capacity items at once.
 * @returns new queue; destroy with na_workq_destroy(); NULL on failure.
 */
na_workq_t *na_workq_new(int threads, size_t capacity, na_work_fn *fn, void *ctx);

/**
 * @brief Wait for the items being worked on, stop the workers and free the
 *        queue. Items submitted and not taken are not freed (take them
 *        first). NULL-safe.
 */
void na_workq_destroy(na_workq_t *q);

/** @returns false (nothing done) when the queue holds @p capacity items. */
bool na_workq_submit(na_workq_t *q, void *item);

/**
 * @brief The oldest item submitted and not taken, once its work is done.
 * @param timeout_ms how long to wait for it (0: do not wait).
 * @returns the item, or NULL when there is none or it is not done yet.
 */
void *na_workq_take(na_workq_t *q, int timeout_ms);

/** @returns items submitted and not yet taken. */
size_t na_workq_pending(const na_workq_t *q);

/** @returns true when na_workq_submit() would accept an item. */
bool na_workq_has_room(const na_workq_t *q);

/**
 * @brief The thread count for a configured @p want: itself when 0 or more
 *        (at most NA_WORKQ_MAX_THREADS); for -1, one fewer than the CPUs
 *        the calling thread may run on (its affinity, else those online),
 *        at most 8 (the owner's thread is busy too): 0 on one CPU, where a
 *        worker would only add thread switches.
 */
int na_workq_threads(long long want);

#endif
