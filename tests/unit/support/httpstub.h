/*
 * A tiny HTTP/1.1 server on 127.0.0.1 for unit tests: a thread that serves
 * GET from a table of path -> body and records every POST (headers and
 * body), answering scripted statuses. Keep-alive, Content-Length bodies
 * only. Not for production use: it trusts its clients.
 */
#ifndef NA_TEST_HTTPSTUB_H
#define NA_TEST_HTTPSTUB_H

#include <pthread.h>
#include <stddef.h>

#define NA_STUB_MAX_PATHS 8
#define NA_STUB_MAX_POSTS 1024

struct na_stub_post {
    char path[128];
    char webhook_id[80];
    char *body;
};

struct na_stub {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    volatile int stop;
    const char *paths[NA_STUB_MAX_PATHS];
    const char *bodies[NA_STUB_MAX_PATHS];
    int statuses[NA_STUB_MAX_PATHS]; /* answer to GET of that path (0: 200) */
    int post_status;                 /* answer to POSTs (default 200) */
    int gets;
    int posts_cnt;  /* POSTs answered 2xx and recorded */
    int posts_seen; /* POSTs answered, whatever the status */
    struct na_stub_post posts[NA_STUB_MAX_POSTS];
};

/* Start on a free port; returns 0 or -1. */
int na_stub_start(struct na_stub *s);
/* Serve @p body (borrowed) for GET @p path. */
void na_stub_set(struct na_stub *s, const char *path, const char *body);
/* Serve @p body (borrowed) with @p status for GET @p path. */
void na_stub_set_status(struct na_stub *s, const char *path, int status,
                        const char *body);
/* Stop the thread and free recorded bodies. */
void na_stub_stop(struct na_stub *s);
/* Distinct webhook-id values among recorded POSTs. */
int na_stub_unique_posts(struct na_stub *s);

#endif
