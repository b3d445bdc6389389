/* One article's road through the consumer (see pipeline.h). */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/fault.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"

void na_decision_init(struct na_decision *d) {
    memset(d, 0, sizeof(*d));
    na_article_init(&d->article);
}

void na_decision_cleanup(struct na_decision *d) {
    for (size_t i = 0; i < d->alerts_cnt; i++) {
        free(d->alerts[i].need);
        free(d->alerts[i].pending_until_ms);
    }
    free(d->alerts);
    json_decref(d->story);
    json_decref(d->story_signature);
    na_story_read_destroy(d->story_read);
    na_classification_cleanup(&d->cls);
    na_article_cleanup(&d->article);
    na_decision_init(d);
}

na_err_t na_pipeline_decode(const struct na_pipeline *p, const void *value, size_t len,
                            struct na_decision *d) {
    (void)p;
    d->decoded = false;
    if (!value) {
        snprintf(d->error, sizeof(d->error), "record has no value");
        return NA_OK;
    }
    if (len > NA_MAX_ARTICLE_BYTES) {
        snprintf(d->error, sizeof(d->error), "record of %zu bytes exceeds %u", len,
                 NA_MAX_ARTICLE_BYTES);
        return NA_OK;
    }
    na_err_t err =
        na_article_from_json(value, len, &d->article, d->error, sizeof(d->error));
    if (err == NA_ERR_NOMEM) {
        return err;
    }
    d->decoded = !err;
    return NA_OK;
}

na_err_t na_pipeline_classify(const struct na_pipeline *p, struct na_decision *d) {
    if (na_fault("classify")) {
        return NA_ERR_NOMEM;
    }
    /* Classifying fails only for want of memory. */
    if (na_rules_classify(p->rules, &d->article, &d->cls)) {
        return NA_ERR_NOMEM;
    }
    /* Only articles that match are grouped (na_pipeline_alerts()); their
     * features are read here, where the driver's worker threads call. */
    if (p->read_stories && d->cls.matches_cnt) {
        if (!d->story_read && !(d->story_read = na_story_read_new())) {
            return NA_ERR_NOMEM;
        }
        if (na_story_read(d->story_read, &d->article)) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}

/* What @p route still needs of @p alert_id, by the ledger. */
static enum na_route_need route_need(const struct na_pipeline *p,
                                     const struct na_route *route, const char *alert_id,
                                     int64_t *until_ms) {
    switch (na_ledger_state(p->ledger, alert_id, route->name, until_ms)) {
    case NA_LEDGER_SENT:
        return NA_NEED_SENT;
    case NA_LEDGER_DEAD:
        return NA_NEED_DEAD;
    case NA_LEDGER_PENDING:
        return NA_NEED_PENDING;
    case NA_LEDGER_PARKED:
        return NA_NEED_PARKED;
    case NA_LEDGER_NONE:
        break;
    }
    return NA_NEED_SEND;
}

na_err_t na_pipeline_alerts(const struct na_pipeline *p, struct na_decision *d) {
    const struct na_classification *cls = &d->cls;
    size_t routes = p->routes ? p->routes->cnt : 0;

    d->story_new = true;
    /* Only articles that match are grouped: a story matters here only if
     * it can alert. */
    if (p->stories && cls->matches_cnt) {
        if (na_stories_assign_read(p->stories, &d->article, d->story_read, d->story_id,
                                   &d->story_new)) {
            return NA_ERR_NOMEM;
        }
        d->has_story = true;
        char first[NA_RFC3339_LEN] = "";
        int64_t t0 = na_story_first_seen(p->stories, d->story_id);
        if (t0 != NA_TIME_UNKNOWN) {
            na_time_format_rfc3339(t0, first);
        }
        d->story = json_pack("{s:s, s:I, s:s?}", "id", d->story_id, "articles",
                             (json_int_t)na_story_article_count(p->stories, d->story_id),
                             "first_seen", *first ? first : NULL);
        /* The signature (what restarts need) is made only for a ledger
         * record that is written: na_pipeline_signature(). */
        if (!d->story) {
            return NA_ERR_NOMEM;
        }
    }
    if (cls->matches_cnt && !(d->alerts = calloc(cls->matches_cnt, sizeof(*d->alerts)))) {
        return NA_ERR_NOMEM;
    }
    d->routes_cnt = routes;
    for (size_t i = 0; i < cls->matches_cnt; i++) {
        struct na_decided_alert *da = &d->alerts[i];
        d->alerts_cnt++;
        na_err_t err = na_alert_init_story(&da->alert, &d->article, &cls->matches[i],
                                           na_rules_version(p->rules),
                                           d->has_story ? d->story_id : NULL);
        if (err) {
            return err;
        }
        da->alert.story = d->story;
        if (routes && (!(da->need = calloc(routes, sizeof(*da->need))) ||
                       !(da->pending_until_ms = calloc(routes, sizeof(int64_t))))) {
            return NA_ERR_NOMEM;
        }
        for (size_t r = 0; r < routes; r++) {
            const struct na_route *route = &p->routes->v[r];
            da->need[r] =
                na_route_wants(route, cls->matches[i].topic, cls->matches[i].score)
                    ? route_need(p, route, da->alert.id, &da->pending_until_ms[r])
                    : NA_NEED_NONE;
        }
    }
    return NA_OK;
}

na_err_t na_pipeline_signature(const struct na_pipeline *p, struct na_decision *d) {
    if (d->story_signature || !p->stories || !p->ledger || !d->has_story) {
        return NA_OK;
    }
    /* The story's features sorted, a JSON object of up to 200: it costs
     * more than grouping the article, and most matching articles write no
     * ledger record (later reports of a story, dry runs). */
    if (!(d->story_signature = na_story_signature(p->stories, d->story_id))) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < d->alerts_cnt; i++) {
        d->alerts[i].alert.story_state = d->story_signature;
    }
    return NA_OK;
}
