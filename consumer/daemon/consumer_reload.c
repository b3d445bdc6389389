#include "consumer_reload.h"

#include <string.h>

#include "newsalert/config.h"
#include "newsalert/daemon.h"

struct rules_ctx {
    const char *path;
    na_rules_t **live;
    na_rules_t *staged;
};

static na_err_t rules_load(void *vctx, char *errstr, size_t errstr_size) {
    struct rules_ctx *ctx = vctx;
    return na_rules_load_file(ctx->path, &ctx->staged, errstr, errstr_size);
}

static void rules_commit(void *vctx) {
    struct rules_ctx *ctx = vctx;
    na_rules_destroy(*ctx->live);
    *ctx->live = ctx->staged;
    ctx->staged = NULL;
}

static void rules_discard(void *vctx) {
    struct rules_ctx *ctx = vctx;
    na_rules_destroy(ctx->staged);
    ctx->staged = NULL;
}

static void rules_describe(void *vctx, char *buf, size_t size) {
    struct rules_ctx *ctx = vctx;
    snprintf(buf, size, "rules=%s topics=%zu", na_rules_version(*ctx->live),
             na_rules_topic_count(*ctx->live));
}

na_err_t na_consumer_reload_rules(const char *path, na_rules_t **rulesp) {
    struct rules_ctx ctx = {path, rulesp, NULL};
    static const struct na_reload_ops ops = {"rules", rules_load, rules_commit,
                                             rules_discard, rules_describe};
    return na_daemon_reload("consumer", &ops, &ctx);
}

struct routes_ctx {
    const char *config_path;
    const char *webhook;
    const char *webhook_format;
    struct na_routes *staged;
};

static na_err_t routes_load(void *vctx, char *errstr, size_t errstr_size) {
    struct routes_ctx *ctx = vctx;
    json_t *root = NULL;
    na_err_t err = NA_OK;

    if (ctx->config_path) {
        if ((err = na_conf_load_file(ctx->config_path, &root, errstr, errstr_size))) {
            return err;
        }
        json_t *arr = json_object_get(root, "routes");
        if (arr && (err = na_routes_parse(arr, ctx->staged, errstr, errstr_size))) {
            goto out;
        }
    }
    if (ctx->webhook && *ctx->webhook &&
        (err = na_routes_add_url(ctx->staged, ctx->webhook, ctx->webhook_format, errstr,
                                 errstr_size))) {
        goto out;
    }
out:
    json_decref(root);
    return err;
}

static void routes_commit(void *vctx) {
    (void)vctx; /* the caller swaps once the old routes are idle */
}

static void routes_discard(void *vctx) {
    struct routes_ctx *ctx = vctx;
    na_routes_cleanup(ctx->staged);
    memset(ctx->staged, 0, sizeof(*ctx->staged));
}

static void routes_describe(void *vctx, char *buf, size_t size) {
    struct routes_ctx *ctx = vctx;
    snprintf(buf, size, "routes=%zu", ctx->staged->cnt);
}

na_err_t na_consumer_reload_routes(const char *config_path, const char *webhook,
                                   const char *webhook_format, struct na_routes *staged) {
    struct routes_ctx ctx = {config_path, webhook, webhook_format, staged};
    static const struct na_reload_ops ops = {"routes", routes_load, routes_commit,
                                             routes_discard, routes_describe};
    memset(staged, 0, sizeof(*staged));
    return na_daemon_reload("consumer", &ops, &ctx);
}
