/* Worker threads with in-order hand-back (see workq.h). A ring of slots:
 * [head, next) are being worked on or done, [next, tail) wait for a
 * worker; the owner takes from head. */
#define _GNU_SOURCE /* sched_getaffinity(), CPU_COUNT() */
#include "newsalert/workq.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

struct slot {
    void *item;
    bool done;
};

struct na_workq_s {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a slot waits for a worker, or stop */
    pthread_cond_t done; /* the head slot is done */
    struct slot *slots;
    size_t cap;
    size_t head, next, tail; /* monotonic counters; slot index = counter % cap */
    bool stop;
    na_work_fn *fn;
    void *ctx;
    pthread_t *threads;
    int threads_cnt;
};

static void *worker(void *arg) {
    na_workq_t *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->stop && q->next == q->tail) {
            pthread_cond_wait(&q->work, &q->lock);
        }
        if (q->next == q->tail) { /* stop, nothing left to start */
            break;
        }
        size_t i = q->next++ % q->cap;
        void *item = q->slots[i].item;
        pthread_mutex_unlock(&q->lock);
        q->fn(item, q->ctx);
        pthread_mutex_lock(&q->lock);
        q->slots[i].done = true;
        if (i == q->head % q->cap) {
            pthread_cond_signal(&q->done);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

na_workq_t *na_workq_new(int threads, size_t capacity, na_work_fn *fn, void *ctx) {
    na_workq_t *q = NULL;
    if (threads < 0 || threads > NA_WORKQ_MAX_THREADS || !capacity || !fn ||
        !(q = calloc(1, sizeof(*q)))) {
        return NULL;
    }
    q->cap = capacity;
    q->fn = fn;
    q->ctx = ctx;
    if (!(q->slots = calloc(capacity, sizeof(*q->slots))) ||
        (threads && !(q->threads = calloc((size_t)threads, sizeof(*q->threads))))) {
        free(q->slots);
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    /* na_workq_take() waits on the monotonic clock: a wall clock set back
     * (NTP, by hand) would hold the owner that much longer. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->done, &attr);
    pthread_condattr_destroy(&attr);
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&q->threads[q->threads_cnt], NULL, worker, q)) {
            na_workq_destroy(q);
            return NULL;
        }
        q->threads_cnt++;
    }
    return q;
}

void na_workq_destroy(na_workq_t *q) {
    if (!q) {
        return;
    }
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    q->tail = q->next; /* items not started are not worked on */
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (int t = 0; t < q->threads_cnt; t++) {
        pthread_join(q->threads[t], NULL);
    }
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q->slots);
    free(q);
}

bool na_workq_submit(na_workq_t *q, void *item) {
    if (!q->threads_cnt) {
        if (q->tail - q->head >= q->cap) {
            return false;
        }
        q->fn(item, q->ctx);
        struct slot *s = &q->slots[q->tail++ % q->cap];
        s->item = item;
        s->done = true;
        q->next = q->tail;
        return true;
    }
    pthread_mutex_lock(&q->lock);
    bool room = q->tail - q->head < q->cap;
    if (room) {
        struct slot *s = &q->slots[q->tail++ % q->cap];
        s->item = item;
        s->done = false;
        pthread_cond_signal(&q->work);
    }
    pthread_mutex_unlock(&q->lock);
    return room;
}

void *na_workq_take(na_workq_t *q, int timeout_ms) {
    void *item = NULL;
    if (!q->threads_cnt) {
        if (q->head == q->tail) {
            return NULL;
        }
        return q->slots[q->head++ % q->cap].item;
    }
    pthread_mutex_lock(&q->lock);
    if (q->head != q->tail && !q->slots[q->head % q->cap].done && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of q->done */
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (q->head != q->tail && !q->slots[q->head % q->cap].done) {
            if (pthread_cond_timedwait(&q->done, &q->lock, &ts)) {
                break;
            }
        }
    }
    if (q->head != q->tail && q->slots[q->head % q->cap].done) {
        item = q->slots[q->head % q->cap].item;
        q->head++;
        /* The new head may be done already: a waiting owner sees it. */
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

size_t na_workq_pending(const na_workq_t *q) {
    pthread_mutex_t *lock = (pthread_mutex_t *)&q->lock;
    if (!q->threads_cnt) {
        return q->tail - q->head;
    }
    pthread_mutex_lock(lock);
    size_t n = q->tail - q->head;
    pthread_mutex_unlock(lock);
    return n;
}

bool na_workq_has_room(const na_workq_t *q) {
    return na_workq_pending(q) < q->cap;
}

/* The CPUs the calling thread may run on (its affinity: taskset, a
 * container's cpuset), else those online. */
static long usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
        return CPU_COUNT(&set);
    }
    return sysconf(_SC_NPROCESSORS_ONLN);
}

int na_workq_threads(long long want) {
    if (want >= 0) {
        return want > NA_WORKQ_MAX_THREADS ? NA_WORKQ_MAX_THREADS : (int)want;
    }
    /* On one CPU a worker only adds thread switches to the same work. */
    long cpus = usable_cpus();
    return cpus > 1 ? (int)(cpus - 1 < 8 ? cpus - 1 : 8) : 0;
}
