#include "producer_reload.h"

#include <stdio.h>
#include <string.h>

#include "newsalert/daemon.h"

struct sources_ctx {
    const char *path;
    struct na_sources *staged;
};

static na_err_t sources_load(void *vctx, char *errstr, size_t errstr_size) {
    struct sources_ctx *ctx = vctx;
    return na_sources_load_file(ctx->path, ctx->staged, errstr, errstr_size);
}

static void sources_commit(void *vctx) {
    (void)vctx; /* the caller moves its feed state over */
}

static void sources_discard(void *vctx) {
    struct sources_ctx *ctx = vctx;
    na_sources_cleanup(ctx->staged);
    memset(ctx->staged, 0, sizeof(*ctx->staged));
}

static void sources_describe(void *vctx, char *buf, size_t size) {
    struct sources_ctx *ctx = vctx;
    snprintf(buf, size, "sources=%zu", ctx->staged->cnt);
}

na_err_t na_producer_reload_sources(const char *path, struct na_sources *staged) {
    struct sources_ctx ctx = {path, staged};
    static const struct na_reload_ops ops = {"sources", sources_load, sources_commit,
                                             sources_discard, sources_describe};
    memset(staged, 0, sizeof(*staged));
    return na_daemon_reload("producer", &ops, &ctx);
}

long na_producer_source_find(const struct na_sources *s, const char *id) {
    if (s->by_id) {
        size_t lo = 0, hi = s->cnt;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(s->v[s->by_id[mid]].id, id);
            if (c == 0) {
                return (long)s->by_id[mid];
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return -1;
    }
    for (size_t i = 0; i < s->cnt; i++) {
        if (s->v[i].id && !strcmp(s->v[i].id, id)) {
            return (long)i;
        }
    }
    return -1;
}
