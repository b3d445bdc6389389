/* Generic JSON: the alert/v1 document itself (signed by the deliverer when
 * the route has a secret, as Standard Webhooks specifies). */
#include <stdlib.h>

#include "format.h"

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    json_t *root = na_alert_to_json(alert);
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    na_buf_puts(out, text);
    free(text);
    return out->oom ? NA_ERR_NOMEM : NA_OK;
}

/* {"schema": "alert-digest/v1", "count": N, "alerts": [{id, topic, score,
 * title, url, source}]}: generic receivers get every item (no size cap
 * beyond the route's digest threshold, which bounds the count). */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < cnt; i++) {
        const struct na_digest_item *it = items[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:f, s:s?, s:s?, s:s?}", "id",
                                             it->alert_id, "topic", it->topic, "score",
                                             it->score, "title", it->title, "url",
                                             it->url, "source", it->source));
    }
    return na_format_dump_steal(json_pack("{s:s, s:I, s:o}", "schema", "alert-digest/v1",
                                          "count", (json_int_t)cnt, "alerts", arr),
                                out);
}

/* Generic receivers are usually our own services: fast, with bursts. */
const struct na_format na_format_json = {"json", render, render_digest, 50.0, 100.0};
