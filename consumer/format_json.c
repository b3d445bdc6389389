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

const struct na_format na_format_json = {"json", render};
