/*
 * bench_classify: articles per second of the rules engine over generated
 * ~4 KB articles with N generated topics, or of a naive per-rule baseline
 * (each topic's query evaluated by scanning the lower-cased text once per
 * term, as a loop of strstr-like searches would), on the calling thread.
 *
 *   bench_classify --rules N [--mode engine|naive] [--seconds S]
 *                  [--scan auto|tokenise|bitmap|db] [--news JSONL [--words FILE]]
 *
 * --scan picks how the engine scans fields (rules_internal.h
 * na_rules_db_mode): the default, every field through the tokeniser (the
 * scan before the fast path), the fast path without or always with the key
 * database; the case name says which when not the default.
 * Prints JSON lines: articles_per_s (CPU time of the process), mb_per_s,
 * matches_per_article and peak_rss_kb (getrusage ru_maxrss) for the case
 * "rules=N" (engine) or "rules=N baseline=naive".
 *
 * The generator is deterministic. Vocabulary: 30,000 made-up words; article
 * words are drawn Zipf-like (the 100 most frequent act as function words),
 * 4 KB per article, a title of 8 words; 256 distinct articles, cycled.
 * Topic i is one of four shapes over words drawn uniformly from ranks 100
 * and up (so rules name the rarer words, as topic rules do):
 *   "A B" AND (C OR D*)     A AND B NOT C     A NEAR/5 B
 *   title:A^2 OR (B AND C)
 *
 * --news reads real prose instead (make_news(): the project's labelled
 * articles, cut into 4 KB bodies) and draws the same four shapes over the
 * words of a word list; the case name starts "corpus=news". --rules-file
 * runs a rules file instead of generated topics (case "rules=file(N)").
 *
 * --watchlist N (with --news) runs the watchlist series: a generated list of
 * N parties (make_watchlist()) as one watchlist topic, alone (case
 * "watchlist=N") or added to --rules-file ("rules=file(3)+watchlist=N";
 * N = 0: the file alone, "rules=file(3)"), and one listed name put into
 * every 8th article's body and every 32nd title. It also prints compile_s
 * (CPU time of loading the rules and the list), entries and load_rss_kb
 * (what loading added to the peak RSS).
 */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "newsalert/article.h"
#include "newsalert/util.h"
#include "rules.h"
#include "rules_match.h"

#define VOCAB 30000
#define COMMON 100
#define ARTICLES 256
#define ARTICLE_BYTES 4096

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char synth_vocab[VOCAB][16];
static double zipf_cdf[VOCAB];

/* Rule words: the synthetic vocabulary from rank COMMON on, or (news) the
 * word list less the corpus's COMMON most frequent words. */
static const char **lex;
static size_t lex_cnt;

static void make_vocab(void) {
    static const char *const syl[] = {
        "ka", "lo",  "mi",  "ren", "to",  "va",  "del", "sor", "pa", "ne",  "qui", "bar",
        "fu", "gal", "zen", "wi",  "tor", "ple", "cra", "don", "ex", "mun", "tiv", "go"};
    double sum = 0;
    for (size_t i = 0; i < VOCAB; i++) {
        size_t v = i + 7;
        size_t n = 0;
        char *w = synth_vocab[i];
        /* 2 to 4 syllables, unique by construction (base 24 digits + length) */
        w[n] = '\0';
        do {
            const char *s = syl[v % 24];
            size_t l = strlen(s);
            memcpy(w + n, s, l);
            n += l;
            v /= 24;
        } while (v && n < 12);
        w[n++] = 'd'; /* never ends in s: plural folding stays out of the way */
        w[n] = '\0';
        sum += 1.0 / ((double)i + 10.0);
        zipf_cdf[i] = sum;
    }
    for (size_t i = 0; i < VOCAB; i++) {
        zipf_cdf[i] /= sum;
    }
    lex = malloc((VOCAB - COMMON) * sizeof(*lex));
    for (size_t i = COMMON; i < VOCAB; i++) {
        lex[lex_cnt++] = synth_vocab[i];
    }
}

static const char *zipf_word(void) {
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return synth_vocab[lo];
}

static const char *rare_word(void) {
    return synth_vocab[COMMON + rnd() % (VOCAB - COMMON)];
}

static const char *rule_word(void) {
    return lex[rnd() % lex_cnt];
}

/* ---- topics ---- */

struct topic {
    int shape;
    const char *w[4];
};

static struct topic *make_topics(size_t n, char **json) {
    struct topic *t = calloc(n, sizeof(*t));
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, "{\"topics\":[\n");
    for (size_t i = 0; i < n; i++) {
        t[i].shape = (int)(i % 4);
        for (int k = 0; k < 4; k++) {
            t[i].w[k] = rule_word();
        }
        const char *const *w = t[i].w;
        na_buf_printf(&b, "%s{\"name\":\"t%zu\",\"threshold\":1,\"query\":\"",
                      i ? ",\n" : "", i);
        switch (t[i].shape) {
        case 0:
            na_buf_printf(&b, "\\\"%s %s\\\" AND (%s OR %.5s*)", w[0], w[1], w[2], w[3]);
            break;
        case 1:
            na_buf_printf(&b, "%s AND %s NOT %s", w[0], w[1], w[2]);
            break;
        case 2:
            na_buf_printf(&b, "%s NEAR/5 %s", w[0], w[1]);
            break;
        default:
            na_buf_printf(&b, "title:%s^2 OR (%s AND %s)", w[0], w[1], w[2]);
            break;
        }
        na_buf_puts(&b, "\"}");
    }
    na_buf_puts(&b, "]}\n");
    *json = na_buf_steal(&b);
    return t;
}

/* ---- articles ---- */

static void make_articles(struct na_article *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct na_buf b;
        na_article_init(&a[i]);
        snprintf(a[i].id, sizeof(a[i].id), "a%zu", i);
        na_buf_init(&b);
        for (int k = 0; k < 8; k++) {
            na_buf_printf(&b, "%s%s", k ? " " : "", k % 3 ? zipf_word() : rare_word());
        }
        a[i].title = na_buf_steal(&b);
        na_buf_init(&b);
        size_t words = 0;
        while (b.len < ARTICLE_BYTES - 20) {
            const char *w = words % 9 == 4 ? rare_word() : zipf_word();
            na_buf_printf(&b, "%s%s", words ? " " : "", w);
            words++;
            if (words % 17 == 0) {
                na_buf_puts(&b, ".");
            }
        }
        a[i].content = na_buf_steal(&b);
    }
}

/* ---- the news corpus ---- */

static char lower_c(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

struct doc {
    char *title;
    char *text;
};

static int cmp_count_desc(const void *a, const void *b) {
    const json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "n"));
    const json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "n"));
    return (x < y) - (x > y);
}

/* Lower-case ASCII words of s, counted in @p counts. */
static void count_words(json_t *counts, const char *s) {
    char w[64];
    size_t n = 0;
    for (const char *p = s;; p++) {
        char c = lower_c(*p);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (n < sizeof(w) - 1) {
                w[n++] = c;
            }
            continue;
        }
        if (n) {
            w[n] = '\0';
            json_t *v = json_object_get(counts, w);
            json_object_set_new(counts, w,
                                json_integer(v ? json_integer_value(v) + 1 : 1));
            n = 0;
        }
        if (!*p) {
            break;
        }
    }
}

/*
 * News articles: @p path holds JSON lines with "title" and "text" (the
 * project's labelled set). Article i has the title of one of them and a body
 * of their texts in a seeded order, cut at a space near ARTICLE_BYTES. Rule
 * words come from the word list @p words_path (one word per line; ASCII
 * letters only, 3 or more, lower-cased, without the corpus's COMMON most
 * frequent words), drawn uniformly: rules name words of the language, most
 * of which a given article does not use.
 */
static int make_news(struct na_article *a, size_t n, const char *path,
                     const char *words_path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_classify: %s: cannot open\n", path);
        return -1;
    }
    struct doc *docs = NULL;
    size_t cnt = 0, cap = 0;
    char line[65536];
    json_t *counts = json_object();
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *t = json_string_value(json_object_get(o, "title"));
        const char *x = json_string_value(json_object_get(o, "text"));
        if (t && x) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 256;
                docs = realloc(docs, cap * sizeof(*docs));
            }
            docs[cnt].title = strdup(t);
            docs[cnt].text = strdup(x);
            count_words(counts, t);
            count_words(counts, x);
            cnt++;
        }
        json_decref(o);
    }
    fclose(f);
    if (!cnt) {
        fprintf(stderr, "bench_classify: %s: no articles\n", path);
        return -1;
    }
    /* the COMMON most frequent words of the corpus stay out of the rules */
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v) {
        json_array_append_new(
            arr, json_pack("{s:s,s:I}", "w", k, "n", (json_int_t)json_integer_value(v)));
    }
    size_t nw = json_array_size(arr);
    json_t **sorted = malloc((nw + 1) * sizeof(*sorted));
    for (size_t i = 0; i < nw; i++) {
        sorted[i] = json_array_get(arr, i);
    }
    qsort(sorted, nw, sizeof(*sorted), cmp_count_desc);
    json_t *common = json_object();
    for (size_t i = 0; i < nw && i < COMMON; i++) {
        json_object_set(common, json_string_value(json_object_get(sorted[i], "w")),
                        json_true());
    }
    free(sorted);
    json_decref(arr);
    json_decref(counts);

    FILE *wf = fopen(words_path, "r");
    if (!wf) {
        fprintf(stderr, "bench_classify: %s: cannot open (a word list, one per line)\n",
                words_path);
        return -1;
    }
    json_t *seen = json_object();
    size_t lcap = 0;
    lex = NULL;
    lex_cnt = 0;
    while (fgets(line, sizeof(line), wf)) {
        size_t l = strcspn(line, "\r\n");
        bool ok = l >= 3 && l < 16;
        for (size_t i = 0; ok && i < l; i++) {
            line[i] = lower_c(line[i]);
            ok = line[i] >= 'a' && line[i] <= 'z';
        }
        line[l] = '\0';
        if (!ok || json_object_get(common, line) || json_object_get(seen, line)) {
            continue;
        }
        json_object_set(seen, line, json_true());
        if (lex_cnt == lcap) {
            lcap = lcap ? lcap * 2 : 4096;
            lex = realloc(lex, lcap * sizeof(*lex));
        }
        lex[lex_cnt++] = strdup(line);
    }
    fclose(wf);
    json_decref(seen);
    json_decref(common);
    if (lex_cnt < 1000) {
        fprintf(stderr, "bench_classify: %s: too few words (%zu)\n", words_path, lex_cnt);
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        struct na_buf b;
        na_article_init(&a[i]);
        snprintf(a[i].id, sizeof(a[i].id), "a%zu", i);
        a[i].title = strdup(docs[rnd() % cnt].title);
        na_buf_init(&b);
        while (b.len < ARTICLE_BYTES) {
            na_buf_printf(&b, "%s%s", b.len ? "\n\n" : "", docs[rnd() % cnt].text);
        }
        size_t cut = ARTICLE_BYTES;
        while (cut > 0 && b.data[cut] != ' ') {
            cut--;
        }
        b.data[cut] = '\0';
        a[i].content = na_buf_steal(&b);
    }
    for (size_t i = 0; i < cnt; i++) {
        free(docs[i].title);
        free(docs[i].text);
    }
    free(docs);
    return 0;
}

/* ---- generated watchlists (--watchlist N) ---- */

/*
 * N parties in the Consolidated Screening List's CSV layout, deterministic:
 * about 70 % companies ("Shenzhen Huaxin Precision Technology Co., Ltd.",
 * "Al-Noor General Trading FZE", "Rostovtek Machine Works JSC"), 25 %
 * individuals ("VOLKOVAR, Arkady Semyonovich"), 5 % vessels; 0 to 3 aliases
 * each (a short form, an acronym, a former name), about one company in ten
 * with a Chinese name, one in twenty with a Cyrillic one, and accented
 * Latin letters in some coined words. Coined words are syllables, so a
 * name's core words are mostly not English; the industry words, places,
 * given names and legal forms are the common words that real lists share.
 */
static const char *const wl_syl[] = {
    "hua", "xin", "tek", "no",   "va",  "ros", "tar", "kon", "mir", "zha",
    "lin", "dor", "vel", "ka",   "ri",  "sen", "mar", "qi",  "fal", "bek",
    "zor", "an",  "tal", "gor",  "pe",  "lu",  "hai", "yun", "dar", "sha",
    "min", "ol",  "ve",  "stra", "bel", "kir", "um",  "ja",  "ter", "vik"};
static const char *const wl_acc[] = {"ü", "é", "ö", "ç", "ş", "ø", "á", "ł"};
static const char *const wl_place[] = {
    "Shenzhen",  "Beijing",  "Shanghai",         "Guangzhou",
    "Hong Kong", "Moscow",   "Tehran",           "Dubai",
    "Minsk",     "Istanbul", "Novosibirsk",      "Tianjin",
    "Wuhan",     "Chengdu",  "Karachi",          "Tashkent",
    "Almaty",    "Yerevan",  "Saint Petersburg", "Damascus"};
static const char *const wl_ind[] = {
    "Technology",       "Electronics", "Trading",
    "Industrial",       "Shipping",    "Logistics",
    "Aviation",         "Machinery",   "Precision",
    "Semiconductor",    "Optics",      "Petroleum",
    "Chemical",         "Engineering", "Import and Export",
    "Holdings",         "Group",       "International",
    "General Trading",  "Investment",  "Research Institute",
    "Microelectronics", "Aerospace",   "Materials",
    "Instruments",      "Energy",      "Marine",
    "Defense Systems",  "Components",  "Machine Works"};
static const char *const wl_legal[] = {
    "Co., Ltd.", "LLC", "Ltd.", "Limited",         "JSC",  "Corporation", "Inc.", "GmbH",
    "FZE",       "OOO", "PJSC", "Company Limited", "S.A.", "Pte. Ltd.",   ""};
static const char *const wl_given[] = {
    "Arkady", "Ivan",    "Alexei", "Dmitry", "Sergei", "Olga",   "Natalia",  "Mohammad",
    "Ali",    "Hossein", "Reza",   "Wei",    "Jun",    "Lei",    "Xiaoming", "Kim",
    "Jong",   "Ahmed",   "Yusuf",  "Elena",  "Viktor", "Farhad", "Tariq",    "Anatoly"};
static const char *const wl_patr[] = {"Semyonovich",  "Petrovich",   "Ivanovich",
                                      "Alexandrovna", "Sergeyevich", ""};
static const char *const wl_sur[] = {"ov", "enko", "ian", "zadeh", "ski",
                                     "in", "ev",   "i",   "ani",   "uk"};
static const char *const wl_cjk[] = {"华", "信", "科", "技", "电", "子", "光", "航",
                                     "海", "达", "通", "中", "新", "远", "恒", "泰",
                                     "盛", "国", "际", "贸", "易", "精", "密", "源"};
static const char *const wl_cyr[] = {"ро", "ст",  "тех",  "ал", "ма", "ш",
                                     "ин", "ком", "пром", "эн", "ер", "го"};
static const char *const wl_source[] = {
    "Entity List (EL) - Bureau of Industry and Security",
    "Specially Designated Nationals (SDN) - Treasury Department",
    "Unverified List (UVL) - Bureau of Industry and Security",
    "Military End User (MEU) List - Bureau of Industry and Security",
    "Non-SDN Chinese Military-Industrial Complex Companies List (CMIC) - Treasury "
    "Department"};
static const char *const wl_country[] = {"CN", "RU", "IR", "AE", "BY", "HK", "TR",
                                         "KP", "SY", "PK", "UZ", "KZ", "AM"};

#define WL_PICK(a) (a[rnd() % (sizeof(a) / sizeof(a[0]))])

/* A coined word of 2-3 syllables, capitalised, sometimes with an accent. */
static void wl_coined(struct na_buf *b) {
    size_t n = 2 + rnd() % 2;
    size_t start = b->len;
    for (size_t i = 0; i < n; i++) {
        if (i && rnd() % 12 == 0) {
            na_buf_puts(b, WL_PICK(wl_acc));
        }
        na_buf_puts(b, WL_PICK(wl_syl));
    }
    if (b->data && b->data[start] >= 'a' && b->data[start] <= 'z') {
        b->data[start] = (char)(b->data[start] - 'a' + 'A');
    }
}

/* Quote a CSV field into out. */
static void csv_put(struct na_buf *out, const char *s) {
    na_buf_puts(out, "\"");
    for (; s && *s; s++) {
        na_buf_append(out, s, 1);
        if (*s == '"') {
            na_buf_append(out, s, 1);
        }
    }
    na_buf_puts(out, "\"");
}

/* Names to put into the prose: one per listed party, kept for injection. */
static char **wl_names;
static size_t wl_names_cnt;

static char *make_watchlist(size_t n, const char *path) {
    struct na_buf out;
    na_buf_init(&out);
    na_buf_puts(&out, "_id,source,entity_number,type,programs,name,title,addresses,"
                      "federal_register_notice,start_date,end_date,standard_order,"
                      "license_requirement,license_policy,call_sign,vessel_type,"
                      "gross_tonnage,gross_registered_tonnage,vessel_flag,vessel_owner,"
                      "remarks,source_list_url,alt_names,citizenships,dates_of_birth,"
                      "nationalities,places_of_birth,source_information_url,ids\n");
    wl_names = calloc(n + 1, sizeof(*wl_names));
    wl_names_cnt = 0;
    for (size_t i = 0; i < n; i++) {
        struct na_buf name, alt, core;
        na_buf_init(&name);
        na_buf_init(&alt);
        na_buf_init(&core);
        unsigned kind = (unsigned)(rnd() % 100);
        const char *type = kind < 70 ? "Entity" : kind < 95 ? "Individual" : "Vessel";
        const char *country = WL_PICK(wl_country);
        if (kind < 70) {
            struct na_buf coined;
            na_buf_init(&coined);
            bool place = rnd() % 3 == 0;
            if (place) {
                na_buf_printf(&core, "%s ", WL_PICK(wl_place));
            }
            size_t cw = rnd() % 4 == 0 ? 2 : 1;
            for (size_t k = 0; k < cw; k++) {
                if (k) {
                    na_buf_puts(&coined, rnd() % 5 ? " " : "-");
                }
                wl_coined(&coined);
            }
            na_buf_puts(&core, coined.data);
            na_buf_printf(&core, " %s", WL_PICK(wl_ind));
            if (rnd() % 3 == 0) {
                na_buf_printf(&core, " %s", WL_PICK(wl_ind));
            }
            const char *legal = WL_PICK(wl_legal);
            na_buf_printf(&name, "%s%s%s", core.data, *legal ? " " : "", legal);
            unsigned a = (unsigned)(rnd() % 4);
            if (a >= 1) { /* the short form: without the place, or the coined words */
                na_buf_puts(&alt, place ? strchr(core.data, ' ') + 1 : coined.data);
            }
            if (a >= 2) { /* an acronym of the core's words, when 3 letters or more */
                char acr[16];
                size_t an = 0;
                bool start = true;
                for (const char *p = core.data; *p && an < sizeof(acr) - 1; p++) {
                    if (start && *p >= 'A' && *p <= 'Z') {
                        acr[an++] = *p;
                    }
                    start = *p == ' ' || *p == '-';
                }
                acr[an] = '\0';
                if (an >= 3) {
                    na_buf_printf(&alt, "; %s", acr);
                }
            }
            na_buf_cleanup(&coined);
            if (a >= 3) { /* a former name */
                na_buf_puts(&alt, "; ");
                wl_coined(&alt);
                na_buf_printf(&alt, " %s %s", WL_PICK(wl_ind), WL_PICK(wl_legal));
            }
            if (rnd() % 10 == 0) {
                na_buf_puts(&alt, alt.len ? "; " : "");
                for (size_t k = 0, m = 2 + rnd() % 3; k < m; k++) {
                    na_buf_puts(&alt, WL_PICK(wl_cjk));
                }
                na_buf_puts(&alt, rnd() % 2 ? "有限公司" : "科技股份有限公司");
            }
            if (rnd() % 20 == 0) {
                na_buf_puts(&alt, alt.len ? "; ООО \"" : "ООО \"");
                for (size_t k = 0, m = 2 + rnd() % 2; k < m; k++) {
                    na_buf_puts(&alt, WL_PICK(wl_cyr));
                }
                na_buf_puts(&alt, "\"");
            }
        } else if (kind < 95) {
            struct na_buf sur;
            na_buf_init(&sur);
            wl_coined(&sur);
            na_buf_puts(&sur, WL_PICK(wl_sur));
            for (char *p = sur.data; *p; p++) {
                if (*p >= 'a' && *p <= 'z') {
                    *p = (char)(*p - 'a' + 'A');
                }
            }
            const char *given = WL_PICK(wl_given);
            const char *patr = WL_PICK(wl_patr);
            na_buf_printf(&name, "%s, %s%s%s", sur.data, given, *patr ? " " : "", patr);
            na_buf_printf(&core, "%s%s%s %s", given, *patr ? " " : "", patr, sur.data);
            if (rnd() % 2) {
                na_buf_printf(&alt, "%s, %s", sur.data, given);
            }
            na_buf_cleanup(&sur);
        } else {
            na_buf_puts(&name, "M/V ");
            wl_coined(&name);
            na_buf_printf(&name, " %s", rnd() % 2 ? "Star" : "Pioneer");
            na_buf_puts(&core, name.data + 4);
        }
        na_buf_printf(&out, "wl%zu,", i);
        csv_put(&out, WL_PICK(wl_source));
        na_buf_printf(&out, ",,%s,", type);
        csv_put(&out, rnd() % 2 ? "EAR" : "RUSSIA-EO14024; UKRAINE-EO13662");
        na_buf_puts(&out, ",");
        csv_put(&out, name.data);
        na_buf_puts(&out, ",,");
        na_buf_printf(&out, "\"Building %zu, Industrial Road, %s\"", i % 97, country);
        na_buf_puts(&out, ",,,,,,,,,,,,,,,");
        csv_put(&out, alt.data ? alt.data : "");
        na_buf_printf(&out, ",%s,,,,,\n", kind >= 70 && kind < 95 ? country : "");
        wl_names[wl_names_cnt++] = na_buf_steal(rnd() % 2 ? &name : &core);
        na_buf_cleanup(&name);
        na_buf_cleanup(&alt);
        na_buf_cleanup(&core);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f)) {
        fprintf(stderr, "bench_classify: %s: cannot write the watchlist\n", path);
        na_buf_cleanup(&out);
        return NULL;
    }
    char *rules = NULL;
    size_t len = out.len;
    na_buf_cleanup(&out);
    (void)len;
    rules = malloc(strlen(path) + 128);
    snprintf(rules, strlen(path) + 128,
             "{\"name\": \"restricted_parties\", \"watchlist\": \"%s\", "
             "\"format\": \"csl-csv\"}",
             path);
    return rules;
}

/* Put a listed name into every 8th article's body (at a sentence start
 * half way) and every 32nd article's title: a few parties in the prose. */
static void inject_names(struct na_article *a, size_t n) {
    for (size_t i = 0; i < n && wl_names_cnt; i += 8) {
        const char *nm = wl_names[rnd() % wl_names_cnt];
        char *c = a[i].content;
        size_t len = strlen(c);
        char *dot = strstr(c + len / 2, ". ");
        size_t at = dot ? (size_t)(dot - c) + 2 : len;
        struct na_buf b;
        na_buf_init(&b);
        na_buf_append(&b, c, at);
        na_buf_printf(&b, "%s said it had not been told. ", nm);
        na_buf_puts(&b, c + at);
        /* keep about 4 KB: cut the end back at a space */
        size_t cut = b.len > ARTICLE_BYTES ? ARTICLE_BYTES : b.len;
        while (cut > 0 && cut < b.len && b.data[cut] != ' ') {
            cut--;
        }
        b.data[cut] = '\0';
        free(a[i].content);
        a[i].content = na_buf_steal(&b);
        if (i % 32 == 0) {
            struct na_buf t;
            na_buf_init(&t);
            na_buf_printf(&t, "%s: %s", wl_names[rnd() % wl_names_cnt], a[i].title);
            free(a[i].title);
            a[i].title = na_buf_steal(&t);
        }
    }
}

/* ---- the naive baseline ---- */

static bool word_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Next whole-word (or prefix) occurrence of w in s at or after from. */
static const char *find_word(const char *s, size_t len, size_t from, const char *w,
                             bool prefix) {
    size_t wl = strlen(w);
    const char *p = s + from;
    const char *end = s + len;
    while (p + wl <= end) {
        const char *q = memmem(p, (size_t)(end - p), w, wl);
        if (!q) {
            return NULL;
        }
        bool left = q == s || !word_byte(q[-1]);
        bool right = prefix || q + wl == end || !word_byte(q[wl]);
        if (left && right) {
            return q;
        }
        p = q + 1;
    }
    return NULL;
}

static bool has(const char *s, size_t len, const char *w) {
    return find_word(s, len, 0, w, false) != NULL;
}

static size_t words_between(const char *a, const char *b) {
    size_t n = 0;
    for (const char *p = a; p < b; p++) {
        n += *p == ' ';
    }
    return n;
}

static bool naive_topic(const struct topic *t, const char *title, size_t tl,
                        const char *body, size_t bl) {
    const char *const *w = t->w;
    char phrase[40];
    char pre[8];
    switch (t->shape) {
    case 0:
        snprintf(phrase, sizeof(phrase), "%s %s", w[0], w[1]);
        snprintf(pre, sizeof(pre), "%.5s", w[3]);
        for (int f = 0; f < 2; f++) {
            const char *s = f ? body : title;
            size_t l = f ? bl : tl;
            if (has(s, l, phrase) && (has(s, l, w[2]) || find_word(s, l, 0, pre, true))) {
                return true;
            }
        }
        return false;
    case 1:
        return (has(title, tl, w[0]) || has(body, bl, w[0])) &&
               (has(title, tl, w[1]) || has(body, bl, w[1])) &&
               !(has(title, tl, w[2]) || has(body, bl, w[2]));
    case 2:
        for (size_t from = 0;;) {
            const char *a = find_word(body, bl, from, w[0], false);
            if (!a) {
                return false;
            }
            for (size_t f2 = 0;;) {
                const char *b = find_word(body, bl, f2, w[1], false);
                if (!b) {
                    break;
                }
                size_t d = b > a ? words_between(a, b) : words_between(b, a);
                if (d <= 5) {
                    return true;
                }
                f2 = (size_t)(b - body) + 1;
            }
            from = (size_t)(a - body) + 1;
        }
    default:
        return has(title, tl, w[0]) || ((has(title, tl, w[1]) || has(body, bl, w[1])) &&
                                        (has(title, tl, w[2]) || has(body, bl, w[2])));
    }
}

static size_t naive_classify(const struct topic *t, size_t n, const struct na_article *a,
                             char *tbuf, char *bbuf) {
    size_t tl = strlen(a->title);
    size_t bl = strlen(a->content);
    size_t matches = 0;
    for (size_t i = 0; i < tl; i++) {
        tbuf[i] = lower_c(a->title[i]);
    }
    for (size_t i = 0; i < bl; i++) {
        bbuf[i] = lower_c(a->content[i]);
    }
    for (size_t i = 0; i < n; i++) {
        matches += naive_topic(&t[i], tbuf, tl, bbuf, bl);
    }
    return matches;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t nrules = 10;
    bool naive = false;
    double seconds = 2.0;
    const char *news = NULL;
    const char *words = "/usr/share/dict/words";
    const char *rules_file = NULL;
    long watch_n = -1; /* --watchlist N: the watchlist series */
    char errstr[1024];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            nrules = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            naive = !strcmp(argv[++i], "naive");
        } else if (!strcmp(argv[i], "--scan") && i + 1 < argc) {
            const char *m = argv[++i];
            na_rules_db_mode = !strcmp(m, "tokenise") ? NA_RULES_DB_OFF
                               : !strcmp(m, "bitmap") ? NA_RULES_DB_BITMAP
                               : !strcmp(m, "db")     ? NA_RULES_DB_ALWAYS
                                                      : NA_RULES_DB_AUTO;
        } else if (!strcmp(argv[i], "--news") && i + 1 < argc) {
            news = argv[++i];
        } else if (!strcmp(argv[i], "--watchlist") && i + 1 < argc) {
            watch_n = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--rules-file") && i + 1 < argc) {
            rules_file = argv[++i];
        } else if (!strcmp(argv[i], "--words") && i + 1 < argc) {
            words = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: bench_classify --rules N [--mode engine|naive] "
                            "[--seconds S] [--scan auto|tokenise|bitmap|db]\n"
                            "                     [--news JSONL [--words FILE]] "
                            "[--rules-file FILE] [--watchlist N]\n");
            return 2;
        }
    }
    make_vocab();
    struct na_article *arts = calloc(ARTICLES, sizeof(*arts));
    char *json = NULL;
    struct topic *topics = NULL;
    if (news) {
        /* the word list for the rules depends on the corpus */
        if (make_news(arts, ARTICLES, news, words)) {
            return 1;
        }
        topics = make_topics(nrules, &json);
    } else {
        topics = make_topics(nrules, &json);
        make_articles(arts, ARTICLES);
    }
    na_rules_t *rules = NULL;
    if ((rules_file || watch_n >= 0) && naive) {
        fprintf(stderr, "bench_classify: --rules-file and --watchlist have no naive "
                        "baseline\n");
        return 2;
    }
    double compile_s = 0;
    long rss_before_kb = 0;
    char wl_path[] = "/tmp/bench_watchlist.XXXXXX";
    if (watch_n >= 0) {
        /* the watchlist series: the list alone, or added to a rules file */
        json_t *root = rules_file ? json_load_file(rules_file, 0, NULL)
                                  : json_pack("{s:[]}", "topics");
        if (!root) {
            fprintf(stderr, "bench_classify: %s: cannot read\n", rules_file);
            return 1;
        }
        if (watch_n > 0) {
            int fd = mkstemp(wl_path);
            if (fd < 0) {
                fprintf(stderr, "bench_classify: cannot make a temporary file\n");
                return 1;
            }
            close(fd);
            char *topic = make_watchlist((size_t)watch_n, wl_path);
            if (!topic) {
                return 1;
            }
            json_array_append_new(json_object_get(root, "topics"),
                                  json_loads(topic, 0, NULL));
            free(topic);
            inject_names(arts, ARTICLES);
        }
        free(json);
        json = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        struct rusage ru0;
        getrusage(RUSAGE_SELF, &ru0);
        rss_before_kb = ru0.ru_maxrss;
        double c0 = cpu_s();
        na_err_t lerr = na_rules_load_buf(json, strlen(json), "bench", &rules, errstr,
                                          sizeof(errstr));
        compile_s = cpu_s() - c0;
        if (watch_n > 0 && !getenv("NA_BENCH_KEEP_WATCHLIST")) {
            unlink(wl_path);
        } else if (watch_n > 0) {
            fprintf(stderr, "bench_classify: watchlist kept in %s\n", wl_path);
        }
        if (lerr) {
            fprintf(stderr, "bench_classify: %s\n", errstr);
            return 1;
        }
    } else if (rules_file ? na_rules_load_file(rules_file, &rules, errstr, sizeof(errstr))
               : !naive   ? na_rules_load_buf(json, strlen(json), "generated", &rules,
                                              errstr, sizeof(errstr))
                          : NA_OK) {
        fprintf(stderr, "bench_classify: %s\n", errstr);
        return 1;
    }
    /* the harness's own byte count, taken once, not per classification */
    size_t sizes[ARTICLES];
    for (size_t i = 0; i < ARTICLES; i++) {
        sizes[i] = strlen(arts[i].title) + strlen(arts[i].content);
    }
    char *tbuf = malloc(ARTICLE_BYTES * 2);
    char *bbuf = malloc(ARTICLE_BYTES * 2);
    size_t done = 0, matches = 0, bytes = 0;
    double t0 = cpu_s();
    double t1 = t0;
    while (t1 - t0 < seconds || done < ARTICLES) {
        const struct na_article *a = &arts[done % ARTICLES];
        if (naive) {
            matches += naive_classify(topics, nrules, a, tbuf, bbuf);
        } else {
            struct na_classification c;
            if (na_rules_classify(rules, a, &c)) {
                fprintf(stderr, "bench_classify: out of memory\n");
                return 1;
            }
            matches += c.matches_cnt;
            na_classification_cleanup(&c);
        }
        bytes += sizes[done % ARTICLES];
        done++;
        if (done % 16 == 0 || naive) {
            t1 = cpu_s();
        }
    }
    t1 = cpu_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char cs[128];
    char rn[32];
    if (rules_file) {
        snprintf(rn, sizeof(rn), "file(%zu)", na_rules_topic_count(rules));
    } else {
        snprintf(rn, sizeof(rn), "%zu", nrules);
    }
    if (watch_n >= 0) {
        /* the cases the watchlist issue names: watchlist=N, rules=file(3),
         * rules=file(3)+watchlist=N (news prose) */
        size_t file_topics = na_rules_topic_count(rules) - (watch_n > 0);
        if (rules_file && watch_n > 0) {
            snprintf(cs, sizeof(cs), "rules=file(%zu)+watchlist=%ld", file_topics,
                     watch_n);
        } else if (rules_file) {
            snprintf(cs, sizeof(cs), "rules=file(%zu)", file_topics);
        } else {
            snprintf(cs, sizeof(cs), "watchlist=%ld", watch_n);
        }
    } else
        snprintf(cs, sizeof(cs), "%srules=%s%s%s", news ? "corpus=news " : "", rn,
                 naive ? " baseline=naive" : "",
                 !naive && na_rules_db_mode == NA_RULES_DB_OFF      ? " scan=tokenise"
                 : !naive && na_rules_db_mode == NA_RULES_DB_BITMAP ? " scan=bitmap"
                 : !naive && na_rules_db_mode == NA_RULES_DB_ALWAYS ? " scan=db"
                                                                    : "");
    double el = t1 - t0;
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"articles_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           cs, (double)done / el);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"mb_per_s\","
           "\"value\":%.1f,\"unit\":\"MB/s\"}\n",
           cs, (double)bytes / el / 1e6);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"matches_per_article\","
           "\"value\":%.3f,\"unit\":\"1\"}\n",
           cs, (double)matches / (double)done);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"peak_rss_kb\","
           "\"value\":%ld,\"unit\":\"KiB\"}\n",
           cs, ru.ru_maxrss);
    if (watch_n >= 0) {
        size_t entries = 0;
        na_rules_watch_rejected(rules, &entries);
        printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"compile_s\","
               "\"value\":%.3f,\"unit\":\"s\"}\n",
               cs, compile_s);
        printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"entries\","
               "\"value\":%zu,\"unit\":\"1\"}\n",
               cs, entries);
        printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"load_rss_kb\","
               "\"value\":%ld,\"unit\":\"KiB\"}\n",
               cs, ru.ru_maxrss - rss_before_kb);
    }
    fflush(stdout);
    for (size_t i = 0; i < wl_names_cnt; i++) {
        free(wl_names[i]);
    }
    free(wl_names);
    na_rules_destroy(rules);
    for (size_t i = 0; i < ARTICLES; i++) {
        na_article_cleanup(&arts[i]);
    }
    free(arts);
    free(topics);
    free(json);
    free(tbuf);
    free(bbuf);
    return 0;
}
