/* Discord webhooks: one embed per alert, coloured by topic. Limits: title
 * 256, description 4,096, field name 256 / value 1,024, footer 2,048, all
 * embeds together 6,000 characters, content 2,000. Article text is
 * Markdown-escaped with a backslash and '@' gets a zero-width space; on top
 * of that "allowed_mentions": {"parse": []} so nothing can ping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "newsalert/timeutil.h"

#define DC_TITLE_MAX 256
#define DC_DESC_MAX 4096
#define DC_FIELD_MAX 1024
#define DC_FOOTER_MAX 2048
#define DC_EMBEDS_TOTAL_MAX 6000

/* One colour per topic: the shipped topics fixed, others from a hash. */
static json_int_t topic_color(const char *topic) {
    static const struct {
        const char *topic;
        json_int_t rgb;
    } fixed[] = {
        {"export_controls", 0xD9534F}, {"rare_earths", 0xF0AD4E}, {"taiwan", 0x3498DB}};
    static const json_int_t palette[] = {0x5CB85C, 0x8E44AD, 0x1ABC9C, 0xE67E22,
                                         0x95A5A6};
    unsigned h = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (!strcmp(fixed[i].topic, topic)) {
            return fixed[i].rgb;
        }
    }
    for (const char *p = topic; *p; p++) {
        h = h * 31u + (unsigned char)*p;
    }
    return palette[h % (sizeof(palette) / sizeof(palette[0]))];
}

static json_t *no_mentions(void) {
    return json_pack("{s:[]}", "parse");
}

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    struct na_buf title, desc, footer, topic;
    char ts[NA_RFC3339_LEN] = "";
    char score[32];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&title);
    na_buf_init(&desc);
    na_buf_init(&footer);
    na_buf_init(&topic);
    /* Escaping at most doubles the bytes: cut the input to half, then the
     * result once more to the limit. */
    na_format_md_escape(&title, a->title && *a->title ? a->title : "(untitled)",
                        DC_TITLE_MAX / 2, NA_MD_BACKSLASH);
    na_format_buf_cut(&title, DC_TITLE_MAX);
    na_buf_puts(&desc, "**Evidence:** ");
    for (size_t i = 0; i < m->evidence_cnt && i < 10; i++) {
        na_buf_puts(&desc, i ? ", " : "");
        na_format_md_escape(
            &desc, m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
            80, NA_MD_BACKSLASH);
        na_buf_printf(&desc, " (%s)", m->evidence[i].field);
    }
    for (size_t i = 0; i < m->parties_cnt && i < NA_FORMAT_PARTIES_MAX; i++) {
        char *t = na_format_party_text(&m->parties[i]);
        na_buf_puts(&desc, i ? "\n- " : "\n**Parties:**\n- ");
        na_format_md_escape(&desc, t ? t : "", 300, NA_MD_BACKSLASH);
        free(t);
    }
    if (m->parties_cnt > NA_FORMAT_PARTIES_MAX) {
        na_buf_printf(&desc, "\n+%zu more", m->parties_cnt - NA_FORMAT_PARTIES_MAX);
    }
    if (m->snippet && *m->snippet) {
        na_buf_puts(&desc, "\n> ");
        na_format_md_escape(&desc, m->snippet, 600, NA_MD_BACKSLASH);
    }
    na_format_buf_cut(&desc, 2000);
    na_format_md_escape(&footer, a->source_name ? a->source_name : "unknown source", 200,
                        NA_MD_BACKSLASH);
    na_format_md_escape(&topic, m->topic, 100, NA_MD_BACKSLASH);
    snprintf(score, sizeof(score), "%.2f", m->score);
    if (title.oom || desc.oom || footer.oom || topic.oom) {
        goto out;
    }
    json_t *embed = json_pack("{s:s, s:s, s:I, s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}], "
                              "s:{s:s}}",
                              "title", title.data, "description", desc.data, "color",
                              topic_color(m->topic), "fields", "name", "Topic", "value",
                              topic.data, "inline", 1, "name", "Score", "value", score,
                              "inline", 1, "footer", "text", footer.data);
    if (embed && na_format_http_url(a->url) && strlen(a->url) < 2000) {
        json_object_set_new(embed, "url", json_string(a->url));
    }
    if (embed && a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
        json_object_set_new(embed, "timestamp", json_string(ts));
    }
    err = na_format_dump_steal(
        json_pack("{s:[o], s:o}", "embeds", embed, "allowed_mentions", no_mentions()),
        out);
out:
    na_buf_cleanup(&title);
    na_buf_cleanup(&desc);
    na_buf_cleanup(&footer);
    na_buf_cleanup(&topic);
    return err;
}

/* One embed: title "N news alerts", one description line per alert. */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    struct na_buf desc, line;
    size_t shown = 0;
    char head[64];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&desc);
    na_buf_init(&line);
    snprintf(head, sizeof(head), "%zu news alerts", cnt);
    for (size_t i = 0; i < cnt; i++) {
        const struct na_digest_item *it = items[i];
        line.len = 0;
        na_buf_puts(&line, "\xe2\x80\xa2 ");
        na_format_md_escape(&line, it->topic, 60, NA_MD_BACKSLASH);
        na_buf_printf(&line, " %.2f ", it->score);
        na_format_md_escape(&line, it->title && *it->title ? it->title : "(untitled)",
                            150, NA_MD_BACKSLASH);
        if (it->url && strlen(it->url) < 500) {
            na_buf_printf(&line, "\n%s", it->url);
        }
        na_buf_puts(&line, "\n");
        /* Room for "and N more" within the description limit. */
        if (line.oom || desc.len + line.len + 32 > DC_DESC_MAX) {
            break;
        }
        na_buf_append(&desc, line.data, line.len);
        shown++;
    }
    if (shown < cnt) {
        na_buf_printf(&desc, "and %zu more", cnt - shown);
    }
    if (!desc.oom && !line.oom) {
        err = na_format_dump_steal(
            json_pack("{s:[{s:s, s:s, s:I}], s:o}", "embeds", "title", head,
                      "description", desc.data ? desc.data : "", "color",
                      (json_int_t)0xF0AD4E, "allowed_mentions", no_mentions()),
            out);
    }
    na_buf_cleanup(&desc);
    na_buf_cleanup(&line);
    return err;
}

/* Discord's real budget comes from X-RateLimit-* headers (read by the
 * deliverer); this is the starting pace: 5 per 2 s per webhook. */
const struct na_format na_format_discord = {"discord", render, render_digest, 2.0, 5.0};
