#include "alert.h"

#include <string.h>

#include "newsalert/timeutil.h"

na_err_t na_alert_init_story(struct na_alert *alert, const struct na_article *article,
                             const struct na_match *match, const char *rules_version,
                             const char *story_id) {
    const char *parts[] = {"alert/v1", story_id ? story_id : article->id, match->topic,
                           NULL};
    memset(alert, 0, sizeof(*alert));
    alert->article = article;
    alert->match = match;
    alert->rules_version = rules_version;
    alert->story_id = story_id;
    return na_sha256_hex_parts(parts, alert->id);
}

na_err_t na_alert_init(struct na_alert *alert, const struct na_article *article,
                       const struct na_match *match, const char *rules_version) {
    return na_alert_init_story(alert, article, match, rules_version, NULL);
}

json_t *na_alert_to_json(const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    json_t *root = json_object();
    json_t *ev = json_array();
    json_t *art = json_object();
    char ts[NA_RFC3339_LEN];

    if (!root || !ev || !art) {
        json_decref(root);
        json_decref(ev);
        json_decref(art);
        return NULL;
    }
    json_object_set_new(root, "schema", json_string(NA_ALERT_SCHEMA));
    json_object_set_new(root, "id", json_string(alert->id));
    json_object_set_new(root, "article_id", json_string(a->id));
    json_object_set_new(root, "story_id",
                        json_string(alert->story_id ? alert->story_id : a->id));
    json_object_set_new(root, "topic", json_string(m->topic));
    json_object_set_new(root, "score", json_real(m->score));
    for (size_t i = 0; i < m->evidence_cnt; i++) {
        const struct na_evidence *e = &m->evidence[i];
        json_array_append_new(ev, json_pack("{s:s, s:s?, s:s, s:I}", "term", e->term,
                                            "matched", e->matched, "field", e->field,
                                            "offset", (json_int_t)e->offset));
    }
    json_object_set_new(root, "evidence", ev);
    if (m->parties_cnt) {
        json_t *parties = na_match_parties_json(m);
        if (!parties) {
            json_decref(root);
            json_decref(art);
            return NULL;
        }
        json_object_set_new(root, "parties", parties);
    }
    json_object_set_new(root, "snippet",
                        m->snippet ? json_string(m->snippet) : json_null());
    json_object_set_new(art, "title", json_string(a->title ? a->title : ""));
    json_object_set_new(art, "url", a->url ? json_string(a->url) : json_null());
    json_object_set_new(art, "source",
                        a->source_name ? json_string(a->source_name) : json_null());
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
        json_object_set_new(art, "published_at", json_string(ts));
    } else {
        json_object_set_new(art, "published_at", json_null());
    }
    json_object_set_new(root, "article", art);
    json_object_set_new(root, "rules_version",
                        json_string(alert->rules_version ? alert->rules_version : ""));
    if (alert->story) {
        json_object_set(root, "story", (json_t *)alert->story);
    }
    return root;
}

json_t *na_alert_to_ledger_json(const struct na_alert *alert) {
    json_t *root = na_alert_to_json(alert);
    json_t *story = NULL;
    if (!root || !alert->story || !alert->story_state) {
        return root;
    }
    /* A copy of the users' member with the signature added: the borrowed
     * one is shared by every alert of the article. */
    if (!(story = json_copy((json_t *)alert->story)) ||
        json_object_set(story, "signature", (json_t *)alert->story_state) ||
        json_object_set_new(root, "story", story)) {
        json_decref(story);
        json_decref(root);
        return NULL;
    }
    return root;
}
