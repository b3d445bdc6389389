#include "route.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format.h"
#include "newsalert/config.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"

static void route_cleanup(struct na_route *r) {
    free(r->name);
    free(r->url);
    for (size_t i = 0; i < r->topics_cnt; i++) {
        free(r->topics[i]);
    }
    free(r->topics);
    free(r->secret);
    free(r->key);
    memset(r, 0, sizeof(*r));
}

void na_routes_cleanup(struct na_routes *routes) {
    if (!routes) {
        return;
    }
    for (size_t i = 0; i < routes->cnt; i++) {
        route_cleanup(&routes->v[i]);
    }
    free(routes->v);
    routes->v = NULL;
    routes->cnt = 0;
}

static bool http_url(const char *url) {
    return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

/* Standard Webhooks secrets are base64 with an optional "whsec_" prefix. */
static na_err_t decode_secret(struct na_route *r, char *errstr, size_t errstr_size) {
    const char *b64 = r->secret;
    if (!strncmp(b64, "whsec_", 6)) {
        b64 += 6;
    }
    r->key = na_base64_decode(b64, &r->key_len);
    if (!r->key || r->key_len < 16 || r->key_len > 128) {
        snprintf(errstr, errstr_size,
                 "route \"%s\": secret: want \"whsec_\" + base64 of "
                 "16 to 128 random bytes",
                 r->name);
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

static na_err_t parse_route(json_t *obj, size_t idx, struct na_route *r, char *errstr,
                            size_t errstr_size) {
    const char *key;
    json_t *v;
    char name[32];
    const char *format = "json";

    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "routes[%zu]: not an object", idx);
        return NA_ERR_CONFIG;
    }
    r->keepalive = true;
    r->max_in_flight = NA_ROUTE_MAX_IN_FLIGHT_DEFAULT;
    r->digest_threshold = NA_ROUTE_DIGEST_THRESHOLD;
    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "name") || !strcmp(key, "url") || !strcmp(key, "secret") ||
            !strcmp(key, "format")) {
            if (!json_is_string(v) || !json_string_length(v)) {
                snprintf(errstr, errstr_size, "routes[%zu].%s: want a non-empty string",
                         idx, key);
                return NA_ERR_CONFIG;
            }
            if (!strcmp(key, "format")) {
                format = json_string_value(v);
                continue;
            }
            char **dst = !strcmp(key, "name")  ? &r->name
                         : !strcmp(key, "url") ? &r->url
                                               : &r->secret;
            if (!(*dst = na_strdup(json_string_value(v)))) {
                return NA_ERR_NOMEM;
            }
        } else if (!strcmp(key, "url_file") || !strcmp(key, "secret_file")) {
            /* The secret itself in a file (systemd LoadCredential=, a
             * mounted secret): read now, and again on each SIGHUP. */
            bool is_url = !strcmp(key, "url_file");
            char **dst = is_url ? &r->url : &r->secret;
            char detail[512];
            if (!json_is_string(v) || !json_string_length(v)) {
                snprintf(errstr, errstr_size, "routes[%zu].%s: want a file name", idx,
                         key);
                return NA_ERR_CONFIG;
            }
            if (json_object_get(obj, is_url ? "url" : "secret")) {
                snprintf(errstr, errstr_size, "routes[%zu]: give %s or %s, not both", idx,
                         is_url ? "url" : "secret", key);
                return NA_ERR_CONFIG;
            }
            na_err_t err =
                na_conf_read_secret(json_string_value(v), dst, detail, sizeof(detail));
            if (err) {
                snprintf(errstr, errstr_size, "routes[%zu].%s: %s", idx, key, detail);
                return err;
            }
        } else if (!strcmp(key, "topics")) {
            size_t i;
            json_t *t;
            if (!json_is_array(v)) {
                snprintf(errstr, errstr_size,
                         "routes[%zu].topics: want an array of names", idx);
                return NA_ERR_CONFIG;
            }
            json_array_foreach(v, i, t) {
                if (!json_is_string(t)) {
                    snprintf(errstr, errstr_size, "routes[%zu].topics[%zu]: not a string",
                             idx, i);
                    return NA_ERR_CONFIG;
                }
                char **n = realloc(r->topics, (r->topics_cnt + 1) * sizeof(*n));
                if (!n) {
                    return NA_ERR_NOMEM;
                }
                r->topics = n;
                if (!(n[r->topics_cnt] = na_strdup(json_string_value(t)))) {
                    return NA_ERR_NOMEM;
                }
                r->topics_cnt++;
            }
        } else if (!strcmp(key, "rate_per_s") || !strcmp(key, "burst")) {
            double x = json_number_value(v);
            if (!json_is_number(v) || !isfinite(x) || x <= 0 || x > 100000) {
                snprintf(errstr, errstr_size,
                         "routes[%zu].%s: want a number in (0, 100000]", idx, key);
                return NA_ERR_CONFIG;
            }
            *(!strcmp(key, "burst") ? &r->burst : &r->rate_per_s) = x;
        } else if (!strcmp(key, "digest_threshold") || !strcmp(key, "max_queue")) {
            json_int_t x = json_integer_value(v);
            if (!json_is_integer(v) || x < 0 || x > 1000000) {
                snprintf(errstr, errstr_size,
                         "routes[%zu].%s: want an integer in [0, 1000000]", idx, key);
                return NA_ERR_CONFIG;
            }
            *(!strcmp(key, "max_queue") ? &r->max_queue : &r->digest_threshold) = (long)x;
        } else if (!strcmp(key, "max_in_flight")) {
            json_int_t x = json_integer_value(v);
            if (!json_is_integer(v) || x < 1 || x > 1000) {
                snprintf(errstr, errstr_size,
                         "routes[%zu].max_in_flight: want an integer in [1, 1000]", idx);
                return NA_ERR_CONFIG;
            }
            r->max_in_flight = (long)x;
        } else if (!strcmp(key, "keepalive")) {
            if (!json_is_boolean(v)) {
                snprintf(errstr, errstr_size, "routes[%zu].keepalive: want true or false",
                         idx);
                return NA_ERR_CONFIG;
            }
            r->keepalive = json_is_true(v);
        } else if (!strcmp(key, "min_score")) {
            if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                snprintf(errstr, errstr_size, "routes[%zu].min_score: want a number",
                         idx);
                return NA_ERR_CONFIG;
            }
            r->min_score = json_number_value(v);
        } else {
            snprintf(errstr, errstr_size, "routes[%zu]: unknown key \"%s\"", idx, key);
            return NA_ERR_CONFIG;
        }
    }
    if (!r->url || !http_url(r->url)) {
        snprintf(errstr, errstr_size, "routes[%zu].url%s: want an http(s) URL", idx,
                 json_object_get(obj, "url_file") ? "_file" : "");
        return NA_ERR_CONFIG;
    }
    if (!(r->format = na_format_find(format))) {
        snprintf(errstr, errstr_size, "routes[%zu].format: \"%s\" is not one of %s", idx,
                 format, na_format_names());
        return NA_ERR_CONFIG;
    }
    if (r->rate_per_s <= 0) {
        r->rate_per_s = r->format->rate_per_s;
    }
    if (r->burst <= 0) {
        r->burst = r->format->burst;
    }
    if (!r->name) {
        snprintf(name, sizeof(name), "route%zu", idx);
        if (!(r->name = na_strdup(name))) {
            return NA_ERR_NOMEM;
        }
    }
    if (r->secret) {
        return decode_secret(r, errstr, errstr_size);
    }
    return NA_OK;
}

static struct na_route *grow(struct na_routes *out) {
    struct na_route *n = realloc(out->v, (out->cnt + 1) * sizeof(*n));
    if (!n) {
        return NULL;
    }
    out->v = n;
    memset(&n[out->cnt], 0, sizeof(*n));
    return &n[out->cnt++];
}

na_err_t na_routes_parse(json_t *arr, struct na_routes *out, char *errstr,
                         size_t errstr_size) {
    size_t i;
    json_t *obj;
    if (!json_is_array(arr)) {
        snprintf(errstr, errstr_size, "routes: want an array of route objects");
        return NA_ERR_CONFIG;
    }
    json_array_foreach(arr, i, obj) {
        /* The ledger keeps each route's outcome of an alert (limits.h). */
        if (out->cnt >= NA_MAX_ROUTES) {
            snprintf(errstr, errstr_size, "routes: more than %u routes", NA_MAX_ROUTES);
            return NA_ERR_CONFIG;
        }
        struct na_route *r = grow(out);
        if (!r) {
            return NA_ERR_NOMEM;
        }
        na_err_t err = parse_route(obj, i, r, errstr, errstr_size);
        if (err) {
            route_cleanup(r);
            out->cnt--;
            return err;
        }
        for (size_t j = 0; j + 1 < out->cnt; j++) {
            if (!strcmp(out->v[j].name, r->name)) {
                snprintf(errstr, errstr_size, "routes[%zu]: duplicate name \"%s\"", i,
                         r->name);
                return NA_ERR_CONFIG;
            }
        }
    }
    return NA_OK;
}

na_err_t na_routes_add_url(struct na_routes *out, const char *url, const char *format,
                           char *errstr, size_t errstr_size) {
    json_t *arr = json_pack("[{s:s, s:s, s:s}]", "name", "webhook", "url", url, "format",
                            format ? format : "json");
    if (!arr) {
        return NA_ERR_NOMEM;
    }
    na_err_t err = na_routes_parse(arr, out, errstr, errstr_size);
    json_decref(arr);
    return err;
}

bool na_route_wants(const struct na_route *route, const char *topic, double score) {
    if (score < route->min_score) {
        return false;
    }
    if (!route->topics_cnt) {
        return true;
    }
    for (size_t i = 0; i < route->topics_cnt; i++) {
        if (!strcmp(route->topics[i], topic)) {
            return true;
        }
    }
    return false;
}

json_t *na_routes_dump(const struct na_routes *routes) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < routes->cnt; i++) {
        const struct na_route *r = &routes->v[i];
        char *url = na_conf_redact_url(r->url);
        json_t *topics = json_array();
        for (size_t t = 0; t < r->topics_cnt; t++) {
            json_array_append_new(topics, json_string(r->topics[t]));
        }
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s?, s:s, s:o, s:f, s:s?, s:f, s:f, s:i, s:i, s:b, s:i}",
                      "name", r->name, "url", url, "format", r->format->name, "topics",
                      topics, "min_score", r->min_score, "secret",
                      r->secret ? "***" : NULL, "rate_per_s", r->rate_per_s, "burst",
                      r->burst, "digest_threshold", (int)r->digest_threshold, "max_queue",
                      (int)r->max_queue, "keepalive", r->keepalive, "max_in_flight",
                      (int)r->max_in_flight));
        free(url);
    }
    return arr;
}
