/*
 * Story grouping. See story.h for the contract, story_text.c for the
 * features of an article and story_model.c for the model.
 *
 * Weights. A feature's IDF is log((docs + 30) / (df + 1)), where the
 * document frequencies count the articles seen (assigned and seeded) and
 * are halved whenever the count reaches NA_STORY_IDF_DOCS: a rolling window
 * that forgets old documents smoothly and deterministically, with no clock.
 * After a halving, features no open story has whose frequency fell below
 * NA_STORY_DF_FORGET leave the dictionary (dict_compact()). An article
 * weighs a feature IDF x (1 + ln tf), tf = how often its text gives it
 * (sublinear TF-IDF), and keeps its NA_STORY_ART_FEATURES heaviest.
 *
 * Stories. A story is the sum of its articles' vectors, each as it was
 * weighed when it joined (a centroid of document vectors: no norm is
 * recomputed when the IDF drifts). Per feature it keeps that sum (w), the
 * sum over the articles that had it in their title (tw), and how many
 * articles had it (cnt, tcnt: what signatures store), for at most
 * NA_STORY_MAX_FEATURES features (past that, pruned to half of it: the
 * most frequent, then heaviest). A hash index over the story's features
 * makes adding an article and looking a feature up O(1). The cosine of an
 * article and a story in a view is over the features of that view; the
 * title view compares the article's title with the story's titles, and
 * two cross views the article's title with the story's text and the
 * article's text with the story's titles.
 *
 * Candidates. The inverted index maps a feature to the open stories that
 * have it, each posting with the story's sums. For an article, the
 * postings of its features are scanned from the rarest feature (fewest
 * open stories) up while a budget of NA_STORY_SCAN_BUDGET postings lasts,
 * accumulating each story's dot products: every story met within the
 * window is a candidate, ranked by the sum of its partial cosines. The
 * NA_STORY_CANDIDATES best, less those ranked under NA_STORY_RANK_CUT of
 * the best (the common features never lift those past it: measured on
 * the benchmark's events, no decision changed), get the contributions of
 * the article's common
 * features too (each candidate's features filtered by a small table of
 * the article's, without a branch, those that pass looked up in it, the
 * hits added in the article's order), then their exact cosines
 * and the model's probability. The article joins the most probable story at
 * the model's threshold or above, else opens a story.
 *
 * A feature in more open stories than NA_STORY_UNLIST_AT (what a scan
 * reads: its list would not fit the budget) is never scanned: it keeps
 * only the count of its stories,
 * not its postings (half of an article's features are such words), until
 * closing stories brings the count down to NA_STORY_RELIST_AT: it is then
 * noted, and its postings are rebuilt from the stories' lists (one pass
 * over every open story for all the noted features, relist_all()) when an
 * article that has one of them is scored; one that no open story has any
 * more is listed again when the dictionary forgets (it has no postings to
 * rebuild, and may be forgotten). Joining and closing skip the postings of an unlisted
 * feature (no write, no search for the posting that moves), and a scan never reads it.
 *
 * Closing. A min-heap orders open stories by their newest article time, so
 * closing what the story clock left behind costs O(log n) a story. Each
 * posting knows its feature's place in its story's list, so removing one
 * (the last posting moves into its place) needs no look-up. A posting
 * names its story by the story's place in a table of open stories
 * (st->sref), so that it is 16 bytes.
 *
 * Memory. Most of the time goes to cache misses (the dictionary, postings
 * and stories are tens of MB at 10,000 open stories). An article's features
 * are looked up in a batch after its text is read, with the dictionary's
 * slots and entries prefetched first; the scanned postings, then the first cache
 * lines of the stories they name (what the scan and the ranking use), are
 * prefetched before the scan; closing or pruning a story asks for its
 * features, their postings and the moved postings' owners in passes before
 * it removes them; joining asks for the postings it updates. Prefetches are
 * hints: what is computed, and in which order, is as without them.
 */
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "story_internal.h"
#include "story_mem.h"

/* A hint that *p is read soon (no effect on results). */
#if defined(__GNUC__)
#define NA_PREFETCH(p) __builtin_prefetch(p)
#else
#define NA_PREFETCH(p) ((void)(p))
#endif

/** Most features kept per article (the heaviest). */
#define NA_STORY_ART_FEATURES 160u
/** Most features kept per story; past it a story is pruned to half of it. */
#define NA_STORY_MAX_FEATURES 400u
/** Postings scanned per article for candidates (see above). */
#define NA_STORY_SCAN_BUDGET 128u
/** A feature in more open stories than this keeps only their count, not
 *  its postings (a scan could not read them), until the count falls to
 *  NA_STORY_RELIST_AT (relist_all()). */
#define NA_STORY_UNLIST_AT NA_STORY_SCAN_BUDGET
/** An unlisted feature's postings are rebuilt when it is in this many open
 *  stories or fewer (not NA_STORY_SCAN_BUDGET: a count wandering near it
 *  would make a rebuild, a pass over every story, each time). */
#define NA_STORY_RELIST_AT (NA_STORY_SCAN_BUDGET / 2)
/** A story feature's pidx when its feature keeps no postings. */
#define NA_STORY_NO_POST UINT32_MAX
/** Candidates scored by the model (the best ranked). */
#define NA_STORY_CANDIDATES 8u
/** Of those, the ones ranked at least this share of the best. */
#define NA_STORY_RANK_CUT 0.3
/** Slots of the table of an article's features that score() looks the
 *  candidates' features up in (a power of two, over twice
 *  NA_STORY_ART_FEATURES). */
#define NA_STORY_ATAB 4096u
/** log2 of NA_STORY_ATAB. */
#define NA_STORY_ATAB_BITS 12u
/* A story's features are filtered this many at a time (a story may hold
 * more than NA_STORY_MAX_FEATURES while pruning finds no memory). */
#define NA_STORY_MAYBE 512u
/** Most features in a stored signature (na_story_signature()). */
#define NA_STORY_SIG_FEATURES 200u
/** Document frequencies are halved when this many documents were counted. */
#define NA_STORY_IDF_DOCS 20000.0
/** After a halving, a feature no open story has and whose frequency fell
 *  below this is forgotten (dict_compact()). */
#define NA_STORY_DF_FORGET 0.3
/** Pseudo documents in which no feature occurs (IDF smoothing). */
#define NA_STORY_IDF_PRIOR 30.0
/** Smallest IDF. */
#define NA_STORY_IDF_MIN 0.05
/** A cached IDF is recomputed once the document count moved by this share
 *  since (IDF barely moves then). */
#define NA_STORY_IDF_DRIFT 0.01

struct story;

/* A posting: 16 bytes, four to a cache line (the scan reads whole lists;
 * joining and closing write one posting each). */
struct post {
    uint32_t ref;  /* the story: st->sref[ref] */
    float w, tw;   /* the story's sums for the feature */
    uint32_t sidx; /* the feature's place in its list */
};
_Static_assert(sizeof(struct post) == 16, "a posting is 16 bytes");

/* A feature of the dictionary: one cache line (its text apart, in
 * st->ftext), which the article's look-up, weighing, joining and closing
 * read. */
struct feat {
    uint64_t key;   /* 64-bit hash of its text (feat_key()) */
    uint32_t stamp; /* the article (st->seq) that last emitted it */
    uint32_t aidx;  /* with stamp: its place in st->af */
    uint8_t kind;
    bool unlisted;   /* post_cnt counts its stories; post holds nothing */
    bool relist_due; /* in st->relist */
    bool gone;       /* forgotten (dict_compact()): its id is free for a new feature */
    uint32_t birth;  /* first-seen order among the features (ties of weight) */
    double df;
    double idf;      /* cached */
    double idf_docs; /* st->docs when idf was computed; < 0: never */
    struct post *post;
    uint32_t post_cnt, post_cap;
};
_Static_assert(sizeof(void *) != 8 || sizeof(struct feat) == 64,
               "a feature is one cache line");

/* A story's feature: what scoring reads (16 bytes: the common-feature
 * pass streams candidates' lists). Its counts sit apart (struct sfcnt, at
 * the same place in s->c): only joining, pruning and signatures read them. */
struct sfeat {
    uint32_t fid;
    uint32_t pidx; /* its posting in feats[fid].post */
    float w, tw;   /* sums of those articles' weights */
};

struct sfcnt {
    uint32_t cnt;  /* articles with it */
    uint32_t tcnt; /* of which in their title */
};

/* Both, for sorting (pruning, signatures), with the feature's birth. */
struct kfeat {
    struct sfeat f;
    struct sfcnt c;
    uint32_t birth;
};

/* What the candidate scan, the ranking and the common-feature pass read
 * comes first: the first NA_STORY_HOT_LINES cache lines of a story
 * (allocated on a cache line), which score() prefetches for every story
 * it meets. The dot products the scan adds up for a story are the
 * article's (st->cand_acc), not the story's: the scan writes only the
 * stamp and the place of a story it meets first. */
struct story {
    int64_t first, last;
    uint32_t stamp;          /* scratch: the article that met it */
    uint32_t cidx;           /* scratch: with stamp, its place in st->cand_acc */
    float rinv[NA_SV_COUNT]; /* inv, rounded: what the ranking reads */
    struct sfeat *f;         /* in no order; slot indexes it */
    uint32_t f_cnt, f_cap;
    double inv[NA_SV_COUNT]; /* 1 / norm per view (0: empty view) */
    uint32_t n;
    double sq[NA_SK_COUNT + 1]; /* sum of w^2 per kind; of tw^2 (title) */
    struct sfcnt *c;            /* the counts of s->f[i] in c[i] */
    uint32_t *slot;             /* open addressing over f by fid: index + 1, 0 = empty */
    uint32_t slot_cap;
    bool slot_stale;     /* not kept up (grown, pruned, ids renumbered): rebuilt
                            from f when next needed (story_index()) */
    size_t idx;          /* in st->stories */
    uint32_t ref;        /* its place in st->sref (postings name it so) */
    size_t heap;         /* in st->heap */
    struct story *hnext; /* id hash chain */
    char *event;         /* teacher mode: the labelled event */
    char id[NA_SHA256_HEX_LEN + 1];
};

#define NA_STORY_LINE 64u
/* Cache lines from the start of a story that hold first..inv. */
#define NA_STORY_HOT_LINES                                                               \
    ((offsetof(struct story, rinv) + sizeof(float) * NA_SV_COUNT + NA_STORY_LINE - 1) /  \
     NA_STORY_LINE)

/* The dot products of the article being scored with a story it met, and
 * their rank (score()). */
struct cand_acc {
    double acc[NA_SV_COUNT];
    double rank;
};

struct afeat {
    uint32_t fid;
    uint8_t kind;
    bool title;
    bool scanned;     /* its postings were scanned for candidates */
    bool unlisted;    /* the feature's (struct feat), once weighed */
    uint16_t tf;      /* times the article has it */
    uint32_t stories; /* the feature's post_cnt, once weighed: what
                         choosing the scanned ones reads, not the dictionary */
    uint32_t birth;   /* the feature's (struct feat) */
    double w;         /* idf x (1 + ln tf) */
};

/* What one article (or seed) adds to one feature of a story. */
struct add {
    uint32_t fid;
    uint32_t cnt, tcnt;
    float w, tw;
    uint32_t at; /* scratch of story_add() */
};

/* An entry of the heap of open stories: the story's newest time kept
 * beside it, so that sifting reads no story. */
struct hent {
    int64_t last;
    struct story *s;
};

struct na_stories_s {
    int64_t window_s;
    int64_t reorder_s; /* < 0: never close by time */
    const na_story_model_t *model;
    int64_t now;        /* newest article time seen, Unix s; NA_TIME_UNKNOWN at first */
    struct feat *feats; /* on cache lines (na_smem_big_alloc()) */
    char **ftext;       /* their texts, "K:..." (NULL: gone) */
    size_t feats_cnt, feats_cap;
    size_t feats_live;    /* not gone */
    uint32_t *feats_free; /* the gone ids (a stack), from dict_compact() */
    size_t feats_free_cnt;
    uint32_t births; /* the next feature's birth */
    uint64_t *slots; /* open addressing: key's high 32 bits << 32 | fid + 1; 0 = empty */
    size_t slots_cnt;
    double docs;
    bool compact_due;
    uint32_t seq;
    struct story **stories;
    size_t stories_cnt, stories_cap;
    struct hent *heap; /* min-heap by last */
    struct story **buckets;
    size_t buckets_cnt;
    struct story **sref; /* open stories by s->ref (NULL: free) */
    uint32_t *sref_free; /* the free refs (a stack, as large as sref) */
    size_t sref_cnt, sref_cap, sref_free_cnt;
    struct na_smem mem; /* postings, stories and their lists (story_mem.h) */
    uint32_t *relist;   /* unlisted features whose count fell (relist()) */
    bool relist_met;    /* the article being read has one of them */
    size_t relist_cnt, relist_cap;
    bool relist_lost; /* a note was lost (no memory): walk the dictionary */
    /* scratch of one article */
    struct afeat *af;
    size_t af_cnt, af_cap;
    struct na_story_read_s rd; /* na_stories_assign() reads here */
    struct story **cands;
    struct cand_acc *cand_acc; /* by the order stories were met (s->cidx) */
    size_t cands_cnt, cands_cap;
    size_t ranked_cnt; /* the best ranked, before the rank cut (cands_cnt after) */
    uint32_t
        atab_key[NA_STORY_ATAB]; /* the article's common features: fid + 1; 0: empty */
    uint16_t atab_at[NA_STORY_ATAB];           /* their index in af */
    uint16_t atab_used[NA_STORY_ART_FEATURES]; /* the slots filled (to empty them) */
    uint32_t maybe[NA_STORY_MAYBE]; /* a candidate's features the filter let through */
    uint32_t hit[NA_STORY_ART_FEATURES];   /* per af index: its place in the candidate's f
                                              (where its bit in score()'s hmask is set) */
    struct add add[NA_STORY_ART_FEATURES]; /* what join() adds */
    /* where score() met the candidates' features, for join(): the scan's
     * postings, and each candidate's hits in the common-feature pass */
    struct slog {
        struct story *s;
        uint16_t i;    /* in st->af */
        uint32_t sidx; /* in s->f */
    } slog[NA_STORY_SCAN_BUDGET];
    size_t slog_cnt;
    uint16_t chit_i[NA_STORY_CANDIDATES][NA_STORY_ART_FEATURES];
    uint32_t chit_m[NA_STORY_CANDIDATES][NA_STORY_ART_FEATURES];
    uint16_t chit_cnt[NA_STORY_CANDIDATES];
    struct na_story_verify *verify; /* test support: na_stories_set_verify() */
    /* teacher mode */
    na_story_example_cb *teach_cb;
    void *teach_ctx;
    na_metric_t *m_opened, *m_joined, *m_closed, *m_open, *m_feats; /* process-wide */
};

static uint32_t str_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---------------------------------------------------------------- */
/* Feature dictionary                                               */
/* ---------------------------------------------------------------- */

static uint8_t kind_of(const char *s) {
    switch (s[0]) {
    case 'e':
        return NA_SK_NAME;
    case 'n':
        return NA_SK_FIGURE;
    case 'd':
        return NA_SK_DATE;
    default:
        return NA_SK_TERM;
    }
}

/* A feature's key. Features are told apart by it: two texts with one key
 * would count as one feature (at a million features, odds of about 3e-8
 * that any two do). */
static uint64_t feat_key(const char *s, size_t len) {
    return na_story_hash(s, len);
}

static void slots_insert(uint64_t *slots, size_t n, uint64_t key, uint32_t fid) {
    size_t j = (size_t)key & (n - 1);
    while (slots[j]) {
        j = (j + 1) & (n - 1);
    }
    slots[j] = (key >> 32 << 32) | (fid + 1u);
}

static bool slots_grow(na_stories_t *st) {
    size_t n = st->slots_cnt ? st->slots_cnt * 2 : 1024;
    uint64_t *s = na_smem_big_alloc(n * sizeof(*s));
    if (!s) {
        return false;
    }
    for (size_t i = 0; i < st->feats_cnt; i++) {
        if (!st->feats[i].gone) {
            slots_insert(s, n, st->feats[i].key, (uint32_t)i);
        }
    }
    na_smem_big_free(st->slots, st->slots_cnt * sizeof(*st->slots));
    st->slots = s;
    st->slots_cnt = n;
    return true;
}

/* @returns the feature id of s[0..len), whose feat_key() is @p key, added
 *          when @p add; UINT32_MAX when absent (or on no memory when
 *          adding). */
static uint32_t feat_id_key(na_stories_t *st, const char *s, size_t len, uint64_t key,
                            bool add) {
    if (st->slots_cnt) {
        uint64_t tag = key >> 32 << 32;
        size_t j = (size_t)key & (st->slots_cnt - 1);
        while (st->slots[j]) {
            uint64_t e = st->slots[j];
            if ((e >> 32 << 32) == tag) {
                uint32_t fid = (uint32_t)e - 1;
                if (st->feats[fid].key == key) {
                    return fid;
                }
            }
            j = (j + 1) & (st->slots_cnt - 1);
        }
    }
    if (!add) {
        return UINT32_MAX;
    }
    if ((st->feats_live + 1) * 2 > st->slots_cnt && !slots_grow(st)) {
        return UINT32_MAX;
    }
    if (!st->feats_free_cnt && st->feats_cnt == st->feats_cap) {
        size_t cap = st->feats_cap ? st->feats_cap * 2 : 1024;
        struct feat *nf = na_smem_big_alloc(cap * sizeof(*nf));
        if (!nf) {
            return UINT32_MAX;
        }
        if (st->feats_cnt) {
            memcpy(nf, st->feats, st->feats_cnt * sizeof(*nf));
        }
        char **nt = realloc(st->ftext, cap * sizeof(*nt));
        if (!nt) {
            na_smem_big_free(nf, cap * sizeof(*nf));
            return UINT32_MAX;
        }
        st->ftext = nt;
        na_smem_big_free(st->feats, st->feats_cap * sizeof(*nf));
        st->feats = nf;
        st->feats_cap = cap;
    }
    /* a gone feature's id first: ids stay dense without renumbering */
    uint32_t fid = st->feats_free_cnt ? st->feats_free[st->feats_free_cnt - 1]
                                      : (uint32_t)st->feats_cnt;
    struct feat *f = &st->feats[fid];
    char *text = na_strndup(s, len);
    if (!text) {
        return UINT32_MAX;
    }
    memset(f, 0, sizeof(*f));
    st->ftext[fid] = text;
    f->key = key;
    f->kind = kind_of(text);
    f->birth = st->births++;
    f->idf_docs = -1;
    slots_insert(st->slots, st->slots_cnt, key, fid);
    if (st->feats_free_cnt) {
        st->feats_free_cnt--;
    } else {
        st->feats_cnt++;
    }
    st->feats_live++;
    return fid;
}

static uint32_t feat_id(na_stories_t *st, const char *s, size_t len, bool add) {
    return feat_id_key(st, s, len, feat_key(s, len), add);
}

/* Prefetch what feat_id_key() will read for @p key: its slot, then the
 * feature the first slot with its tag names (a hint; no effect on what
 * the look-up finds). */
static void feat_prefetch_slot(const na_stories_t *st, uint64_t key) {
    if (st->slots_cnt) {
        NA_PREFETCH(&st->slots[(size_t)key & (st->slots_cnt - 1)]);
    }
}

static void feat_prefetch_feat(const na_stories_t *st, uint64_t key) {
    if (!st->slots_cnt) {
        return;
    }
    uint64_t tag = key >> 32 << 32;
    for (size_t j = (size_t)key & (st->slots_cnt - 1); st->slots[j];
         j = (j + 1) & (st->slots_cnt - 1)) {
        uint64_t e = st->slots[j];
        if ((e >> 32 << 32) == tag) {
            NA_PREFETCH(&st->feats[(uint32_t)e - 1]);
            return;
        }
    }
}

/*
 * ln(x) for x >= 1, within 1e-6: the exponent from the IEEE 754 bits, the
 * mantissa m in [1, 2) by a series in (m - 1) / (m + 1). Exact enough for
 * weights, much cheaper than log(), and the same on every machine.
 */
static double fast_ln(double x) {
    /* x = m * 2^(e - 1), m in [1, 2): what frexp() gives (times 2), read
     * from the bits (x >= 1 is a normal number) */
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    int e = (int)((bits >> 52) & 0x7ff) - 1022;
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &bits, sizeof(m));
    double z = (m - 1.0) / (m + 1.0), z2 = z * z;
    double series =
        z *
        (2.0 + z2 * (2.0 / 3 +
                     z2 * (2.0 / 5 + z2 * (2.0 / 7 + z2 * (2.0 / 9 + z2 * 2.0 / 11)))));
    return series + (e - 1) * 0.69314718055994530942;
}

static double feat_idf(na_stories_t *st, uint32_t fid) {
    struct feat *f = &st->feats[fid];
    if (f->idf_docs < 0 ||
        fabs(st->docs - f->idf_docs) > NA_STORY_IDF_DRIFT * f->idf_docs) {
        double idf = fast_ln((st->docs + NA_STORY_IDF_PRIOR) / (f->df + 1.0));
        f->idf = idf < NA_STORY_IDF_MIN ? NA_STORY_IDF_MIN : idf;
        f->idf_docs = st->docs;
    }
    return f->idf;
}

static void df_add(na_stories_t *st, uint32_t fid, double cnt) {
    st->feats[fid].df += cnt;
    st->feats[fid].idf_docs = -1;
}

static void docs_add(na_stories_t *st, double n) {
    st->docs += n;
    if (st->docs >= NA_STORY_IDF_DOCS) {
        st->docs /= 2;
        for (size_t i = 0; i < st->feats_cnt; i++) {
            st->feats[i].df /= 2;
            st->feats[i].idf_docs = -1;
        }
        st->compact_due = true;
    }
}

static void story_rehash(struct story *s);

/* Sort @p v[0..n) by their high 32 bits (a radix sort, two passes of 16
 * bits, through @p tmp of the same size). */
static void sort_hi32(uint64_t *v, uint64_t *tmp, size_t n, uint32_t *count) {
    for (int shift = 32; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof(*count));
        for (size_t i = 0; i < n; i++) {
            count[v[i] >> shift & 0xffff]++;
        }
        for (uint32_t c = 0, sum = 0; c < 65536; c++) {
            uint32_t k = count[c];
            count[c] = sum;
            sum += k;
        }
        for (size_t i = 0; i < n; i++) {
            tmp[count[v[i] >> shift & 0xffff]++] = v[i];
        }
        memcpy(v, tmp, n * sizeof(*v));
    }
}

/*
 * Forget the features that no open story has and whose document frequency
 * decayed below NA_STORY_DF_FORGET: their ids become free for new
 * features (feat_id_key() takes them first), so no other feature's id
 * changes and no story's list is rewritten. A feature noted for relisting
 * is kept until it is relisted. The births of the features kept are
 * renumbered from 0 in their order (so that they never wrap), and the
 * dictionary's slots rebuilt. Runs only between articles.
 */
static void dict_compact(na_stories_t *st) {
    size_t n = st->feats_cnt;
    uint32_t *nfree = realloc(st->feats_free, (n + 1) * sizeof(*nfree));
    if (nfree) {
        st->feats_free = nfree;
    }
    uint64_t *order = malloc((n + 1) * 2 * sizeof(*order));
    uint32_t *count = malloc(65536 * sizeof(*count));
    if (!nfree || !order || !count) {
        free(order);
        free(count);
        return; /* tried again at the next halving */
    }
    st->compact_due = false;
    /* A feature noted for relisting that no open story has any more has
     * no postings to rebuild: listed again here, so that its note does not
     * keep it from being forgotten. The others stay noted (relist_all()
     * when an article has one): no pass over the stories' lists. */
    size_t noted = 0;
    for (size_t r = 0; r < st->relist_cnt; r++) {
        struct feat *f = &st->feats[st->relist[r]];
        if (f->unlisted && !f->post_cnt) {
            f->unlisted = false;
            f->relist_due = false;
        } else {
            st->relist[noted++] = st->relist[r];
        }
    }
    st->relist_cnt = noted;
    size_t live = 0;
    st->feats_free_cnt = 0;
    for (size_t i = 0; i < n; i++) {
        struct feat *f = &st->feats[i];
        if (!f->gone && !f->post_cnt && f->df < NA_STORY_DF_FORGET && !f->relist_due) {
            free(st->ftext[i]);
            st->ftext[i] = NULL;
            na_smem_free(&st->mem, f->post, f->post_cap * sizeof(*f->post));
            memset(f, 0, sizeof(*f));
            f->gone = true;
        }
        if (f->gone) {
            st->feats_free[st->feats_free_cnt++] = (uint32_t)i;
        } else {
            order[live++] = (uint64_t)f->birth << 32 | (uint32_t)i;
        }
    }
    /* the lowest free id is taken first */
    for (size_t i = 0, j = st->feats_free_cnt; i < j / 2; i++) {
        uint32_t x = st->feats_free[i];
        st->feats_free[i] = st->feats_free[j - 1 - i];
        st->feats_free[j - 1 - i] = x;
    }
    sort_hi32(order, order + n + 1, live, count);
    for (size_t k = 0; k < live; k++) {
        st->feats[(uint32_t)order[k]].birth = (uint32_t)k;
    }
    st->births = (uint32_t)live;
    st->feats_live = live;
    free(order);
    free(count);
    size_t slots = 1024;
    while (slots < (live + 1) * 2) {
        slots *= 2;
    }
    uint64_t *ns = slots != st->slots_cnt ? na_smem_big_alloc(slots * sizeof(*ns)) : NULL;
    if (ns) {
        na_smem_big_free(st->slots, st->slots_cnt * sizeof(*st->slots));
        st->slots = ns;
        st->slots_cnt = slots;
    } else {
        memset(st->slots, 0, st->slots_cnt * sizeof(*st->slots));
    }
    for (size_t i = 0; i < n; i++) {
        if (!st->feats[i].gone) {
            slots_insert(st->slots, st->slots_cnt, st->feats[i].key, (uint32_t)i);
        }
    }
    na_metric_set(st->m_feats, (double)live);
}

size_t na_stories_feature_count(const na_stories_t *st) {
    return st->feats_live;
}

/* ---------------------------------------------------------------- */
/* A story's features: list, index, postings, norms                 */
/* ---------------------------------------------------------------- */

static uint32_t fid_hash(uint32_t fid) {
    return fid * 2654435761u;
}

/* Make the index of @p s whole (built lazily: story_index()) before
 * sf_find() reads it. @returns false on no memory. */
static bool story_index(na_stories_t *st, struct story *s) {
    if ((size_t)s->f_cnt * 2 > s->slot_cap || !s->slot_cap) {
        size_t cap = 64;
        while (cap < (size_t)s->f_cnt * 2) {
            cap *= 2;
        }
        uint32_t *ns = na_smem_alloc(&st->mem, cap * sizeof(*ns));
        if (!ns) {
            return false;
        }
        na_smem_free(&st->mem, s->slot, s->slot_cap * sizeof(*s->slot));
        s->slot = ns;
        s->slot_cap = (uint32_t)cap;
        s->slot_stale = true;
    }
    if (s->slot_stale) {
        story_rehash(s);
    }
    return true;
}

/* @returns the feature @p fid of @p s, or NULL (story_index() done). */
static struct sfeat *sf_find(const struct story *s, uint32_t fid) {
    if (!s->slot_cap) {
        return NULL;
    }
    uint32_t mask = s->slot_cap - 1;
    for (uint32_t j = fid_hash(fid) & mask; s->slot[j]; j = (j + 1) & mask) {
        struct sfeat *x = &s->f[s->slot[j] - 1];
        if (x->fid == fid) {
            return x;
        }
    }
    return NULL;
}

/* Rebuild the index of s->f (s->slot_cap already large enough). */
static void story_rehash(struct story *s) {
    s->slot_stale = false;
    if (!s->slot_cap) {
        return;
    }
    uint32_t mask = s->slot_cap - 1;
    memset(s->slot, 0, s->slot_cap * sizeof(*s->slot));
    for (uint32_t i = 0; i < s->f_cnt; i++) {
        uint32_t j = fid_hash(s->f[i].fid) & mask;
        while (s->slot[j]) {
            j = (j + 1) & mask;
        }
        s->slot[j] = i + 1;
    }
}

/* The capacity after @p cap in the steps 4, 6, 8, 12, 16, 24, 32, ..
 * (times 1.5, then 4/3): lists of 8 or 16 bytes an entry so sized fill
 * a size class of the memory's (story_mem.c), and grow by a half or a
 * third, not double. */
static uint32_t cap_next(uint32_t cap) {
    return (cap & (cap - 1)) ? cap / 3 * 4 : cap / 2 * 3;
}

/* Room for @p more features in @p s (list and index). */
static bool story_reserve(na_stories_t *st, struct story *s, size_t more) {
    size_t need = s->f_cnt + more;
    if (need > s->f_cap) {
        uint32_t cap = s->f_cap ? s->f_cap : 32;
        while (cap < need) {
            cap = cap_next(cap);
        }
        struct sfeat *nf = na_smem_alloc(&st->mem, cap * sizeof(*nf));
        struct sfcnt *nc = nf ? na_smem_alloc(&st->mem, cap * sizeof(*nc)) : NULL;
        if (!nc) {
            na_smem_free(&st->mem, nf, cap * sizeof(*nf));
            return false;
        }
        if (s->f_cnt) {
            memcpy(nf, s->f, s->f_cnt * sizeof(*nf));
            memcpy(nc, s->c, s->f_cnt * sizeof(*nc));
        }
        na_smem_free(&st->mem, s->f, s->f_cap * sizeof(*s->f));
        na_smem_free(&st->mem, s->c, s->f_cap * sizeof(*s->c));
        s->f = nf;
        s->c = nc;
        s->f_cap = (uint32_t)cap;
    }
    return true;
}

/* Append @p x to s->f and index it (room reserved). */
static void story_put(struct story *s, const struct sfeat *x) {
    s->c[s->f_cnt] = (struct sfcnt){0, 0};
    s->f[s->f_cnt++] = *x;
    if (s->slot_stale || (size_t)s->f_cnt * 2 > s->slot_cap) {
        s->slot_stale = true; /* story_index() rebuilds it when it is next needed */
        return;
    }
    uint32_t mask = s->slot_cap - 1;
    uint32_t j = fid_hash(x->fid) & mask;
    while (s->slot[j]) {
        j = (j + 1) & mask;
    }
    s->slot[j] = s->f_cnt;
}

/* The inverse norms of the views, from s->sq. */
static void story_inv(struct story *s) {
    double text = 0;
    for (int k = 0; k < NA_SK_COUNT; k++) {
        s->inv[k] = s->sq[k] > 0 ? 1.0 / sqrt(s->sq[k]) : 0;
        text += s->sq[k];
    }
    s->inv[NA_SV_TITLE] = s->sq[NA_SK_COUNT] > 0 ? 1.0 / sqrt(s->sq[NA_SK_COUNT]) : 0;
    s->inv[NA_SV_TITLE_TEXT] = text > 0 ? 1.0 / sqrt(text) : 0;
    s->inv[NA_SV_TEXT_TITLE] = s->inv[NA_SV_TITLE];
    for (int v = 0; v < NA_SV_COUNT; v++) {
        s->rinv[v] = (float)s->inv[v];
    }
}

/* Recompute s->sq exactly (after removing features; rounding drift). */
static void story_sq(na_stories_t *st, struct story *s) {
    memset(s->sq, 0, sizeof(s->sq));
    for (size_t i = 0; i < s->f_cnt; i++) {
        const struct sfeat *x = &s->f[i];
        s->sq[st->feats[x->fid].kind] += (double)x->w * x->w;
        s->sq[NA_SK_COUNT] += (double)x->tw * x->tw;
    }
    story_inv(s);
}

/* The story posting @p p names. */
static struct story *post_story(const na_stories_t *st, const struct post *p) {
    return st->sref[p->ref];
}

/* Room for one more posting in @p f. */
static bool post_reserve(na_stories_t *st, struct feat *f) {
    if (f->post_cnt < f->post_cap) {
        return true;
    }
    uint32_t cap = f->post_cap ? cap_next(f->post_cap) : 4;
    struct post *np =
        na_smem_realloc(&st->mem, f->post, f->post_cap * sizeof(*np), cap * sizeof(*np));
    if (!np) {
        return false;
    }
    f->post = np;
    f->post_cap = cap;
    return true;
}

/* Note feature @p fid for relist_all(). On no memory the note is lost and
 * relist_all() finds the feature by a walk of the dictionary instead. */
static void relist_note(na_stories_t *st, uint32_t fid) {
    if (st->relist_cnt == st->relist_cap) {
        size_t cap = st->relist_cap ? st->relist_cap * 2 : 64;
        uint32_t *n = realloc(st->relist, cap * sizeof(*n));
        if (!n) {
            st->relist_lost = true;
            return;
        }
        st->relist = n;
        st->relist_cap = cap;
    }
    st->relist[st->relist_cnt++] = fid;
    st->feats[fid].relist_due = true;
}

/* Remove the posting of feature @p fid at @p pidx (the last one moves in;
 * its story learns the new place through the posting's sidx); of an
 * unlisted feature, its count. */
static void post_del(na_stories_t *st, uint32_t fid, uint32_t pidx) {
    struct feat *f = &st->feats[fid];
    if (f->unlisted) {
        /* its postings are rebuilt before the next article is scored
         * once it is rare enough to be scanned (relist_all()) */
        if (--f->post_cnt <= NA_STORY_RELIST_AT && !f->relist_due) {
            relist_note(st, fid);
        }
        return;
    }
    uint32_t last = --f->post_cnt;
    if (pidx != last) {
        const struct post *moved = &f->post[last];
        post_story(st, moved)->f[moved->sidx].pidx = pidx;
        f->post[pidx] = *moved;
    }
}

/* Features whose post_del() memory is asked for at once (see below). */
#define NA_STORY_DEL_BATCH 64u

/*
 * Remove the postings of @p x[0..n) (features of one story), in order.
 * A batch at a time, what post_del() reads is asked for first, in passes
 * that each depend on the one before: the features, then their postings
 * (the removed one and the last), then the place in its story of each last
 * posting that moves. Those are hints and read only; the deletions are
 * done as without them. (The passes stay in this function: a function of
 * prefetches alone, which writes nothing, may be dropped by the compiler.)
 */
static void post_del_all(na_stories_t *st, const struct sfeat *x, size_t n) {
    for (size_t b = 0; b < n; b += NA_STORY_DEL_BATCH) {
        size_t e = n - b < NA_STORY_DEL_BATCH ? n : b + NA_STORY_DEL_BATCH;
        for (size_t i = b; i < e; i++) {
            NA_PREFETCH(&st->feats[x[i].fid].post_cnt);
        }
        for (size_t i = b; i < e; i++) {
            const struct feat *f = &st->feats[x[i].fid];
            if (!f->unlisted) {
                NA_PREFETCH(&f->post[x[i].pidx]);
                NA_PREFETCH(&f->post[f->post_cnt - 1]);
            }
        }
        for (size_t i = b; i < e; i++) {
            const struct feat *f = &st->feats[x[i].fid];
            if (!f->unlisted && x[i].pidx != f->post_cnt - 1) {
                NA_PREFETCH(&post_story(st, &f->post[f->post_cnt - 1])->f);
            }
        }
        for (size_t i = b; i < e; i++) {
            const struct feat *f = &st->feats[x[i].fid];
            if (!f->unlisted && x[i].pidx != f->post_cnt - 1) {
                const struct post *moved = &f->post[f->post_cnt - 1];
                NA_PREFETCH(&post_story(st, moved)->f[moved->sidx]);
            }
        }
        for (size_t i = b; i < e; i++) {
            post_del(st, x[i].fid, x[i].pidx);
        }
    }
}

/* A story feature with its weight, for choosing which ones to keep. */
static int keep_cmp(const void *a, const void *b) {
    const struct kfeat *x = a;
    const struct kfeat *y = b;
    if (x->c.cnt != y->c.cnt) {
        return x->c.cnt > y->c.cnt ? -1 : 1;
    }
    if (x->f.w != y->f.w) {
        return x->f.w > y->f.w ? -1 : 1;
    }
    return x->birth < y->birth ? -1 : x->birth > y->birth;
}

/* @returns a copy of @p s's features with their counts, for sorting
 *          (room for @p extra more sfeat after it), or NULL. */
static struct kfeat *kfeat_copy(const na_stories_t *st, const struct story *s,
                                size_t extra) {
    struct kfeat *kv =
        malloc((s->f_cnt + 1) * sizeof(*kv) + extra * sizeof(struct sfeat));
    for (size_t i = 0; kv && i < s->f_cnt; i++) {
        kv[i] = (struct kfeat){s->f[i], s->c[i], st->feats[s->f[i].fid].birth};
    }
    return kv;
}

/* Keep the NA_STORY_MAX_FEATURES / 2 features of @p s that most of its
 * articles had, then the heaviest. */
static void story_prune(na_stories_t *st, struct story *s) {
    size_t keep_n = NA_STORY_MAX_FEATURES / 2;
    /* sort a copy: post_del() finds moved postings' owners through s's
     * index, which must stay whole meanwhile */
    size_t drop_n = s->f_cnt - keep_n;
    struct kfeat *kv = kfeat_copy(st, s, drop_n);
    if (!kv) {
        return; /* kept whole until the next article */
    }
    qsort(kv, s->f_cnt, sizeof(*kv), keep_cmp);
    struct sfeat *drop = (struct sfeat *)(void *)(kv + s->f_cnt + 1);
    for (size_t k = 0; k < drop_n; k++) {
        drop[k] = kv[keep_n + k].f;
    }
    post_del_all(st, drop, drop_n);
    /* the kept ones' postings did not move (each feature has one posting
     * of s, and only dropped features' lists changed), but their places
     * in s->f did */
    for (size_t k = 0; k < keep_n; k++) {
        if (kv[k].f.pidx != NA_STORY_NO_POST) {
            st->feats[kv[k].f.fid].post[kv[k].f.pidx].sidx = (uint32_t)k;
        }
        s->f[k] = kv[k].f;
        s->c[k] = kv[k].c;
    }
    s->f_cnt = (uint32_t)keep_n;
    free(kv);
    s->slot_stale = true; /* built when next needed (story_index()) */
    story_sq(st, s);
}

/* ---------------------------------------------------------------- */
/* Stories: id hash, heap by newest time                            */
/* ---------------------------------------------------------------- */

static size_t bucket_of(const na_stories_t *st, const char *id) {
    return str_hash(id, strlen(id)) & (st->buckets_cnt - 1);
}

static struct story *story_find(const na_stories_t *st, const char *id) {
    if (!st->buckets_cnt || !id) {
        return NULL;
    }
    for (struct story *s = st->buckets[bucket_of(st, id)]; s; s = s->hnext) {
        if (!strcmp(s->id, id)) {
            return s;
        }
    }
    return NULL;
}

static bool buckets_grow(na_stories_t *st) {
    size_t n = st->buckets_cnt ? st->buckets_cnt * 2 : 256;
    struct story **b = calloc(n, sizeof(*b));
    if (!b) {
        return false;
    }
    for (size_t i = 0; i < st->stories_cnt; i++) {
        struct story *s = st->stories[i];
        size_t j = str_hash(s->id, strlen(s->id)) & (n - 1);
        s->hnext = b[j];
        b[j] = s;
    }
    free(st->buckets);
    st->buckets = b;
    st->buckets_cnt = n;
    return true;
}

static void heap_swap(na_stories_t *st, size_t i, size_t j) {
    struct hent t = st->heap[i];
    st->heap[i] = st->heap[j];
    st->heap[j] = t;
    st->heap[i].s->heap = i;
    st->heap[j].s->heap = j;
}

static void heap_up(na_stories_t *st, size_t i) {
    while (i > 0 && st->heap[(i - 1) / 2].last > st->heap[i].last) {
        heap_swap(st, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(na_stories_t *st, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < st->stories_cnt && st->heap[l].last < st->heap[m].last) {
            m = l;
        }
        if (r < st->stories_cnt && st->heap[r].last < st->heap[m].last) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(st, i, m);
        i = m;
    }
}

/* Bytes of a story's block: whole cache lines. */
#define NA_STORY_SIZE                                                                    \
    ((sizeof(struct story) + NA_STORY_LINE - 1) / NA_STORY_LINE * NA_STORY_LINE)

static void story_free(na_stories_t *st, struct story *s) {
    if (s) {
        st->sref[s->ref] = NULL;
        st->sref_free[st->sref_free_cnt++] = s->ref;
        na_smem_free(&st->mem, s->f, s->f_cap * sizeof(*s->f));
        na_smem_free(&st->mem, s->c, s->f_cap * sizeof(*s->c));
        na_smem_free(&st->mem, s->slot, s->slot_cap * sizeof(*s->slot));
        free(s->event);
        na_smem_free(&st->mem, s, NA_STORY_SIZE);
    }
}

static void story_close(na_stories_t *st, struct story *s) {
    post_del_all(st, s->f, s->f_cnt);
    struct story **pp = &st->buckets[bucket_of(st, s->id)];
    while (*pp != s) {
        pp = &(*pp)->hnext;
    }
    *pp = s->hnext;
    /* heap: the last one moves in, then finds its place */
    size_t h = s->heap;
    size_t last = st->stories_cnt - 1;
    if (h != last) {
        heap_swap(st, h, last);
    }
    size_t idx = s->idx;
    st->stories[idx] = st->stories[last];
    st->stories[idx]->idx = idx;
    st->stories_cnt--;
    if (h < st->stories_cnt) {
        heap_down(st, h);
        heap_up(st, h);
    }
    story_free(st, s);
}

static struct story *story_new(na_stories_t *st, const char *id, int64_t t) {
    if (st->stories_cnt == st->stories_cap) {
        size_t cap = st->stories_cap ? st->stories_cap * 2 : 64;
        struct story **ns = realloc(st->stories, cap * sizeof(*ns));
        if (!ns) {
            return NULL;
        }
        st->stories = ns;
        struct hent *nh = realloc(st->heap, cap * sizeof(*nh));
        if (!nh) {
            return NULL;
        }
        st->heap = nh;
        st->stories_cap = cap;
    }
    if (st->stories_cnt + 1 > st->buckets_cnt && !buckets_grow(st)) {
        return NULL;
    }
    if (!st->sref_free_cnt && st->sref_cnt == st->sref_cap) {
        size_t cap = st->sref_cap ? st->sref_cap * 2 : 64;
        struct story **nr = realloc(st->sref, cap * sizeof(*nr));
        if (!nr) {
            return NULL;
        }
        st->sref = nr;
        uint32_t *nf = realloc(st->sref_free, cap * sizeof(*nf));
        if (!nf) {
            return NULL;
        }
        st->sref_free = nf;
        st->sref_cap = cap;
    }
    struct story *s = na_smem_alloc(&st->mem, NA_STORY_SIZE);
    if (!s) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    s->ref =
        st->sref_free_cnt ? st->sref_free[--st->sref_free_cnt] : (uint32_t)st->sref_cnt++;
    st->sref[s->ref] = s;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->first = s->last = t;
    s->idx = s->heap = st->stories_cnt;
    st->stories[st->stories_cnt] = s;
    st->heap[st->stories_cnt] = (struct hent){s->last, s};
    st->stories_cnt++;
    heap_up(st, s->heap);
    size_t b = bucket_of(st, id);
    s->hnext = st->buckets[b];
    st->buckets[b] = s;
    return s;
}

/* Widen the span of @p s to @p t. */
static void story_touch(na_stories_t *st, struct story *s, int64_t t) {
    if (t < s->first) {
        s->first = t;
    }
    if (t > s->last) {
        s->last = t;
        st->heap[s->heap].last = t;
        heap_down(st, s->heap);
    }
}

/* Drop the postings of @p f, keeping their count (each story's feature
 * learns it has none). */
static void unlist(na_stories_t *st, struct feat *f) {
    for (uint32_t k = 0; k < f->post_cnt; k++) {
        post_story(st, &f->post[k])->f[f->post[k].sidx].pidx = NA_STORY_NO_POST;
    }
    na_smem_free(&st->mem, f->post, f->post_cap * sizeof(*f->post));
    f->post = NULL;
    f->post_cap = 0;
    f->unlisted = true;
}

/*
 * Rebuild the postings of the unlisted features whose count fell to what
 * a scan may read (post_del() noted them), from the open stories' lists:
 * before an article is scored, so that a scan never meets an unlisted
 * feature. The postings' order differs from the one deletions would have
 * left; a scan's results do not depend on it (each story's sums are added
 * in the article's order, and candidates are ranked by a total order).
 * @returns NA_OK, or NA_ERR_NOMEM with the features still noted.
 */
static na_err_t relist_all(na_stories_t *st) {
    if (st->relist_lost) {
        /* a note was lost: find them all */
        st->relist_lost = false;
        for (size_t i = 0; i < st->feats_cnt; i++) {
            struct feat *f = &st->feats[i];
            if (f->unlisted && f->post_cnt <= NA_STORY_RELIST_AT && !f->relist_due) {
                relist_note(st, (uint32_t)i);
            }
        }
        if (st->relist_lost) {
            return NA_ERR_NOMEM;
        }
    }
    if (!st->relist_cnt) {
        return NA_OK;
    }
    /* Room first, so that a failure changes nothing: postings for each
     * feature to rebuild (an unlisted feature has none), and a bitmap of
     * them over the feature ids. */
    uint64_t *bits = calloc(st->feats_cnt / 64 + 1, sizeof(*bits));
    bool ok = bits != NULL;
    for (size_t r = 0; ok && r < st->relist_cnt; r++) {
        uint32_t fid = st->relist[r];
        struct feat *f = &st->feats[fid];
        if (f->unlisted && f->post_cnt <= NA_STORY_SCAN_BUDGET && !f->post) {
            uint32_t cap = 4;
            while (cap < f->post_cnt) {
                cap = cap_next(cap);
            }
            if (!(f->post = na_smem_alloc(&st->mem, cap * sizeof(*f->post)))) {
                ok = false;
                break;
            }
            f->post_cap = cap;
            bits[fid / 64] |= (uint64_t)1 << (fid % 64);
        }
    }
    if (!ok) {
        for (size_t r = 0; r < st->relist_cnt; r++) {
            struct feat *f = &st->feats[st->relist[r]];
            if (f->unlisted && f->post) {
                na_smem_free(&st->mem, f->post, f->post_cap * sizeof(*f->post));
                f->post = NULL;
                f->post_cap = 0;
            }
        }
        free(bits);
        return NA_ERR_NOMEM;
    }
    /* One pass over the stories' lists for all of them (the stories'
     * indexes are not needed). Each count was the number of its stories:
     * counted again as the postings are put. */
    for (size_t r = 0; r < st->relist_cnt; r++) {
        struct feat *f = &st->feats[st->relist[r]];
        if (f->unlisted && f->post) {
            f->post_cnt = 0;
        }
    }
    for (size_t k = 0; k < st->stories_cnt; k++) {
        struct story *sy = st->stories[k];
        if (k + 2 < st->stories_cnt) {
            NA_PREFETCH(st->stories[k + 2]);
        }
        if (k + 1 < st->stories_cnt) {
            /* the next story's list, asked for while this one is read */
            const struct story *nx = st->stories[k + 1];
            const char *b = (const char *)nx->f;
            const char *e = (const char *)(nx->f + nx->f_cnt);
            for (; b < e; b += NA_STORY_LINE) {
                NA_PREFETCH(b);
            }
        }
        for (uint32_t i = 0; i < sy->f_cnt; i++) {
            struct sfeat *x = &sy->f[i];
            if (bits[x->fid / 64] >> (x->fid % 64) & 1) {
                struct feat *f = &st->feats[x->fid];
                if (f->post_cnt < f->post_cap) { /* always, the count being right */
                    f->post[f->post_cnt] = (struct post){sy->ref, x->w, x->tw, i};
                    x->pidx = f->post_cnt++;
                }
            }
        }
    }
    for (size_t r = 0; r < st->relist_cnt; r++) {
        struct feat *f = &st->feats[st->relist[r]];
        if (f->unlisted && f->post) {
            f->unlisted = false;
        }
        f->relist_due = false;
    }
    st->relist_cnt = 0;
    free(bits);
    return NA_OK;
}

/*
 * Add @p add to @p s: sums, counts, postings, norms. On failure (no
 * memory) @p s and the index are as they were. With @p at_known, each
 * add[j].at is already the feature's place in s->f (UINT32_MAX: not in
 * it), as scoring found them.
 */
static na_err_t story_add(na_stories_t *st, struct story *s, struct add *add, size_t n,
                          bool at_known) {
    size_t fresh = 0;
    if (!at_known && !story_index(st, s)) {
        return NA_ERR_NOMEM;
    }
    /* Room first (list, postings), so that nothing below fails;
     * each feature's place in s->f remembered (UINT32_MAX: new), unless
     * the caller knows them already (@p at_known); the posting each
     * feature writes below asked for on the way (a hint). */
    for (size_t j = 0; j < n; j++) {
        const struct sfeat *x = at_known
                                    ? (add[j].at != UINT32_MAX ? &s->f[add[j].at] : NULL)
                                    : sf_find(s, add[j].fid);
        struct feat *f = &st->feats[add[j].fid];
        add[j].at = x ? (uint32_t)(x - s->f) : UINT32_MAX;
        if (!x) {
            if (!f->unlisted && !post_reserve(st, f)) {
                return NA_ERR_NOMEM;
            }
            fresh++;
        }
        if (!f->unlisted) {
            NA_PREFETCH(x ? &f->post[x->pidx] : &f->post[f->post_cnt]);
        }
    }
    if (!story_reserve(st, s, fresh)) {
        return NA_ERR_NOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        const struct add *a = &add[j];
        struct feat *f = &st->feats[a->fid];
        struct sfeat *x = a->at != UINT32_MAX ? &s->f[a->at] : NULL;
        if (!x) {
            struct sfeat nx = {a->fid, f->unlisted ? NA_STORY_NO_POST : f->post_cnt, 0,
                               0};
            if (!f->unlisted) {
                f->post[f->post_cnt] = (struct post){s->ref, 0, 0, s->f_cnt};
            }
            f->post_cnt++;
            story_put(s, &nx);
            x = &s->f[s->f_cnt - 1];
        }
        double w0 = x->w, tw0 = x->tw;
        struct sfcnt *c = &s->c[x - s->f];
        c->cnt += a->cnt;
        c->tcnt += a->tcnt;
        x->w += a->w;
        x->tw += a->tw;
        s->sq[f->kind] += (double)x->w * x->w - w0 * w0;
        s->sq[NA_SK_COUNT] += (double)x->tw * x->tw - tw0 * tw0;
        if (!f->unlisted) {
            f->post[x->pidx].w = x->w;
            f->post[x->pidx].tw = x->tw;
            if (f->post_cnt > NA_STORY_UNLIST_AT) {
                /* now in too many stories to be scanned: postings dropped
                 * (each feature comes once in @p add) */
                unlist(st, f);
            }
        }
    }
    if (s->f_cnt > NA_STORY_MAX_FEATURES) {
        story_prune(st, s);
    } else {
        story_inv(s);
    }
    return NA_OK;
}

/* ---------------------------------------------------------------- */
/* Lifecycle                                                        */
/* ---------------------------------------------------------------- */

na_stories_t *na_stories_new_opts(const struct na_stories_opts *o) {
    const na_story_model_t *model = o && o->model ? o->model : na_story_model_default();
    if (!model) {
        return NULL;
    }
    na_stories_t *st = calloc(1, sizeof(*st));
    if (!st) {
        return NULL;
    }
    int64_t window_ms = o && o->window_ms > 0 ? o->window_ms : NA_STORY_WINDOW_MS_DEFAULT;
    int64_t reorder_ms =
        o && o->reorder_set ? o->reorder_ms : NA_STORY_REORDER_MS_DEFAULT;
    st->window_s = window_ms / 1000 > 0 ? window_ms / 1000 : 1;
    st->reorder_s = reorder_ms < 0 ? -1 : reorder_ms / 1000;
    st->model = model;
    st->now = NA_TIME_UNKNOWN;
    na_story_read_init(&st->rd, true);
    na_smem_init(&st->mem);
    st->m_opened = na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_articles_total",
                                  "Articles grouped into stories, by outcome",
                                  "outcome=\"new_story\"");
    st->m_joined =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_articles_total",
                       "Articles grouped into stories, by outcome", "outcome=\"joined\"");
    st->m_closed = na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_closed_total",
                                  "Stories closed at the end of their window", NULL);
    st->m_open = na_metrics_get(NA_METRIC_GAUGE, "newsalert_story_open",
                                "Stories open for new articles", NULL);
    st->m_feats = na_metrics_get(NA_METRIC_GAUGE, "newsalert_story_features",
                                 "Features in the story grouping's dictionary", NULL);
    return st;
}

na_stories_t *na_stories_new(int64_t window_ms) {
    struct na_stories_opts o = {.window_ms = window_ms};
    return na_stories_new_opts(&o);
}

void na_stories_destroy(na_stories_t *st) {
    if (!st) {
        return;
    }
    for (size_t i = 0; i < st->stories_cnt; i++) {
        story_free(st, st->stories[i]);
    }
    free(st->stories);
    free(st->heap);
    free(st->buckets);
    free(st->sref);
    free(st->sref_free);
    for (size_t i = 0; i < st->feats_cnt; i++) {
        free(st->ftext[i]);
        na_smem_free(&st->mem, st->feats[i].post,
                     st->feats[i].post_cap * sizeof(*st->feats[i].post));
    }
    na_smem_big_free(st->feats, st->feats_cap * sizeof(*st->feats));
    free(st->ftext);
    free(st->feats_free);
    na_smem_big_free(st->slots, st->slots_cnt * sizeof(*st->slots));
    na_smem_cleanup(&st->mem);
    free(st->af);
    free(st->cands);
    free(st->cand_acc);
    free(st->relist);
    na_story_read_cleanup(&st->rd);
    free(st);
}

size_t na_stories_count(const na_stories_t *st) {
    return st->stories_cnt;
}

/* Close the stories whose newest article is older than @p before. */
static size_t close_before(na_stories_t *st, int64_t before) {
    size_t closed = 0;
    while (st->stories_cnt && st->heap[0].last < before) {
        story_close(st, st->heap[0].s);
        closed++;
    }
    if (closed) {
        na_metric_add(st->m_closed, (double)closed);
        na_metric_set(st->m_open, (double)st->stories_cnt);
    }
    return closed;
}

size_t na_stories_evict(na_stories_t *st, int64_t now) {
    return close_before(st, now - st->window_s);
}

/* Close what the story clock left behind (unless every story stays open). */
static void close_due(na_stories_t *st) {
    if (st->reorder_s >= 0 && st->now != NA_TIME_UNKNOWN) {
        close_before(st, st->now - st->window_s - st->reorder_s);
    }
}

/* Make room for one more story: past NA_STORY_MAX_OPEN, the one whose
 * newest article is oldest closes. */
static void close_for_room(na_stories_t *st) {
    if (st->stories_cnt >= NA_STORY_MAX_OPEN) {
        story_close(st, st->heap[0].s);
        na_metric_add(st->m_closed, 1);
    }
}

size_t na_story_article_count(const na_stories_t *st, const char *story_id) {
    const struct story *s = story_find(st, story_id);
    return s ? s->n : 0;
}

int64_t na_story_first_seen(const na_stories_t *st, const char *story_id) {
    const struct story *s = story_find(st, story_id);
    return s ? s->first : NA_TIME_UNKNOWN;
}

na_err_t na_story_alert_id(const char *story_id, const char *topic,
                           char alert_id[NA_SHA256_HEX_LEN + 1]) {
    const char *parts[] = {"alert/v1", story_id, topic, NULL};
    return na_sha256_hex_parts(parts, alert_id);
}

void na_stories_set_teacher(na_stories_t *st, na_story_example_cb *cb, void *ctx) {
    st->teach_cb = cb;
    st->teach_ctx = ctx;
}

/* ---------------------------------------------------------------- */
/* Assignment                                                       */
/* ---------------------------------------------------------------- */

/* No time from an article or a ledger record is believed later than this:
 * the wall clock plus some skew between hosts. */
static int64_t latest_believable(void) {
    return na_now_ms() / 1000 + NA_STORY_FUTURE_SLACK_S;
}

/* The article's time: published_at, never later than its fetch (the
 * producer bounds it so, but other writers may not) nor than the wall
 * clock: one article dated in the future would move the story clock and
 * close every open story. */
static int64_t article_time(const na_stories_t *st, const struct na_article *a) {
    int64_t fetched = a->fetched_at != NA_TIME_UNKNOWN && a->fetched_at > 0
                          ? a->fetched_at
                          : NA_TIME_UNKNOWN;
    int64_t t = a->published_at != NA_TIME_UNKNOWN ? a->published_at : fetched;
    if (t == NA_TIME_UNKNOWN) {
        return st->now != NA_TIME_UNKNOWN ? st->now : 0;
    }
    if (fetched != NA_TIME_UNKNOWN && t > fetched) {
        t = fetched;
    }
    int64_t latest = latest_believable();
    return t > latest ? latest : t;
}

/* Intern one distinct feature of the article read into @p rd (in the
 * order the text first gave them: that order numbers new features and
 * orders st->af). */
static bool intern_feature(na_stories_t *st, const struct na_story_read_s *rd,
                           const struct na_story_pend *p) {
    uint32_t fid = feat_id_key(st, rd->ptext + p->off, p->len, p->key, true);
    if (fid == UINT32_MAX) {
        return false;
    }
    struct feat *f = &st->feats[fid];
    if (f->stamp == st->seq) {
        /* distinct keys are distinct features: not reached */
        struct afeat *a = &st->af[f->aidx];
        a->tf = (uint16_t)(a->tf + p->tf < UINT16_MAX ? a->tf + p->tf : UINT16_MAX);
        return true;
    }
    if (st->af_cnt == st->af_cap) {
        size_t cap = st->af_cap ? st->af_cap * 2 : 256;
        struct afeat *n = realloc(st->af, cap * sizeof(*n));
        if (!n) {
            return false;
        }
        st->af = n;
        st->af_cap = cap;
    }
    st->relist_met |= f->relist_due;
    f->stamp = st->seq;
    f->aidx = (uint32_t)st->af_cnt;
    st->af[st->af_cnt++] =
        (struct afeat){fid, f->kind, p->title, false, false, p->tf, 0, f->birth, 0};
    return true;
}

/* Intern the features read into @p rd; the look-ups' memory is
 * prefetched first, a batch at a time. */
static bool intern_features(na_stories_t *st, const struct na_story_read_s *rd) {
    for (size_t i = 0; i < rd->pend_cnt; i++) {
        feat_prefetch_slot(st, rd->pend[i].key);
    }
    for (size_t i = 0; i < rd->pend_cnt; i++) {
        feat_prefetch_feat(st, rd->pend[i].key);
    }
    for (size_t i = 0; i < rd->pend_cnt; i++) {
        if (!intern_feature(st, rd, &rd->pend[i])) {
            return false;
        }
    }
    return true;
}

static int afeat_w_cmp(const void *a, const void *b) {
    const struct afeat *x = a;
    const struct afeat *y = b;
    if (x->w != y->w) {
        return x->w > y->w ? -1 : 1;
    }
    return x->birth < y->birth ? -1 : x->birth > y->birth;
}

/* Look the features read into @p rd up into st->af (weighted, the
 * heaviest NA_STORY_ART_FEATURES), counting the article as a document. */
static na_err_t read_article(na_stories_t *st, const struct na_story_read_s *rd) {
    st->af_cnt = 0;
    if (++st->seq == 0) {
        /* stamps wrapped: forget them all */
        for (size_t i = 0; i < st->feats_cnt; i++) {
            st->feats[i].stamp = 0;
        }
        for (size_t i = 0; i < st->stories_cnt; i++) {
            st->stories[i]->stamp = 0;
        }
        st->seq = 1;
    }
    st->relist_met = false;
    if (!intern_features(st, rd)) {
        return NA_ERR_NOMEM;
    }
    /* The postings of features noted for relisting are rebuilt (a pass
     * over every open story's list) only once an article has one: until
     * then no scan would read them. */
    if (st->relist_met || st->relist_lost) {
        na_err_t err = relist_all(st);
        if (err) {
            return err;
        }
    }
    /* The document counts before it is compared, so its own words weigh. */
    docs_add(st, 1);
    /* df_add() and feat_idf() in one pass (the same arithmetic): every
     * feature's frequency moved, so each IDF is computed again */
    const double docs = st->docs + NA_STORY_IDF_PRIOR;
    for (size_t i = 0; i < st->af_cnt; i++) {
        struct afeat *x = &st->af[i];
        struct feat *f = &st->feats[x->fid];
        f->df += 1;
        double idf = fast_ln(docs / (f->df + 1.0));
        f->idf = idf < NA_STORY_IDF_MIN ? NA_STORY_IDF_MIN : idf;
        f->idf_docs = st->docs;
        x->w = f->idf * (x->tf > 1 ? 1.0 + fast_ln(x->tf) : 1.0);
        x->unlisted = f->unlisted;
        x->stories = f->post_cnt;
    }
    if (st->af_cnt > NA_STORY_ART_FEATURES) {
        qsort(st->af, st->af_cnt, sizeof(*st->af), afeat_w_cmp);
        st->af_cnt = NA_STORY_ART_FEATURES;
    }
    return NA_OK;
}

/* Seconds between @p t and the span of @p s (0 inside it). */
static int64_t gap_of(const struct story *s, int64_t t) {
    return t < s->first ? s->first - t : t > s->last ? t - s->last : 0;
}

/* Note @p s as met by the article (its dot products start at 0). */
static bool cand_push(na_stories_t *st, struct story *s) {
    if (st->cands_cnt == st->cands_cap) {
        size_t cap = st->cands_cap ? st->cands_cap * 2 : 64;
        struct story **n = realloc(st->cands, cap * sizeof(*n));
        if (!n) {
            return false;
        }
        st->cands = n;
        struct cand_acc *c = realloc(st->cand_acc, cap * sizeof(*c));
        if (!c) {
            return false;
        }
        st->cand_acc = c;
        st->cands_cap = cap;
    }
    s->cidx = (uint32_t)st->cands_cnt;
    memset(&st->cand_acc[st->cands_cnt], 0, sizeof(st->cand_acc[st->cands_cnt]));
    st->cands[st->cands_cnt++] = s;
    return true;
}

/* The dot products of the article with @p s (met by the scan). */
static double *acc_of(const na_stories_t *st, const struct story *s) {
    return st->cand_acc[s->cidx].acc;
}

/* Better rank first; ties by id, so the order never depends on memory. */
static bool ranks_before(const na_stories_t *st, const struct story *x,
                         const struct story *y) {
    double rx = st->cand_acc[x->cidx].rank, ry = st->cand_acc[y->cidx].rank;
    return rx != ry ? rx > ry : strcmp(x->id, y->id) < 0;
}

/* Add feature @p a's share to the dot products @p acc of a story whose
 * sums for it are @p w and @p tw. */
static void accumulate(double *acc, const struct afeat *a, double w, double tw) {
    double aw = a->w;
    acc[a->kind] += aw * w;
    acc[NA_SV_TEXT_TITLE] += aw * tw;
    if (a->title) {
        acc[NA_SV_TITLE] += aw * tw;
        acc[NA_SV_TITLE_TEXT] += aw * w;
    }
}

/* The model's inputs for the article in st->af (norms @p anorm) and @p s. */
static void inputs_of(const na_stories_t *st, const struct story *s,
                      const double anorm[NA_SV_COUNT], int64_t t, double x[NA_SX_COUNT]) {
    double cos[NA_SV_COUNT];
    for (int v = 0; v < NA_SV_COUNT; v++) {
        cos[v] = anorm[v] > 0 ? acc_of(st, s)[v] * s->inv[v] / anorm[v] : 0;
        cos[v] = cos[v] > 1 ? 1 : cos[v]; /* rounding */
    }
    x[NA_SX_BIAS] = 1;
    x[NA_SX_TERMS] = cos[NA_SV_TERMS];
    x[NA_SX_NAMES] = cos[NA_SV_NAMES];
    x[NA_SX_FIGURES] = cos[NA_SV_FIGURES];
    x[NA_SX_DATES] = cos[NA_SV_DATES];
    x[NA_SX_TITLE] = cos[NA_SV_TITLE];
    x[NA_SX_FIGURES_BOTH] = anorm[NA_SV_FIGURES] > 0 && s->inv[NA_SV_FIGURES] > 0;
    x[NA_SX_DATES_BOTH] = anorm[NA_SV_DATES] > 0 && s->inv[NA_SV_DATES] > 0;
    x[NA_SX_GAP] = (double)gap_of(s, t) / (double)st->window_s;
    double size = log2(1.0 + s->n);
    x[NA_SX_SIZE] = size > 5 ? 5 : size;
    x[NA_SX_TERMS_NAMES] = cos[NA_SV_TERMS] * cos[NA_SV_NAMES];
    int64_t lo = t < s->first ? t : s->first, hi = t > s->last ? t : s->last;
    x[NA_SX_SPAN] = (double)(hi - lo) / (double)st->window_s;
    x[NA_SX_TITLE_TEXT] = cos[NA_SV_TITLE_TEXT];
    x[NA_SX_TEXT_TITLE] = cos[NA_SV_TEXT_TITLE];
}

/* The first slot of feature @p fid in st->atab_key (the high bits of a
 * multiplicative hash). */
static uint32_t atab_slot(uint32_t fid) {
    return (fid * 2654435761u) >> (32 - NA_STORY_ATAB_BITS);
}

/* Mark the article's features whose postings are scanned: from the rarest
 * up while the budget lasts, in classes of doubling length (1-4, 5-8, ..
 * 65-128 postings), each class in the article's order; a feature is taken
 * when its postings fit in what is left. The classes are made in one pass
 * (a counting sort of the article's indexes). */
static void choose_scanned(na_stories_t *st) {
    enum { CLASSES = 6 }; /* (0, 4], (4, 8], .. (64, 128] = NA_STORY_SCAN_BUDGET */
    _Static_assert(NA_STORY_SCAN_BUDGET == 4u << (CLASSES - 1), "the classes end at it");
    uint16_t at[CLASSES + 1] = {0};
    uint8_t cls[NA_STORY_ART_FEATURES];
    uint16_t order[NA_STORY_ART_FEATURES];
    for (size_t i = 0; i < st->af_cnt; i++) {
        uint32_t len = st->af[i].stories;
        uint8_t c = CLASSES; /* none: no postings, or more than the budget */
        if (len > 0 && len <= NA_STORY_SCAN_BUDGET && !st->af[i].unlisted) {
            c = len <= 4 ? 0 : (uint8_t)(30 - __builtin_clz(len - 1)); /* 5..8 -> 1 */
        }
        cls[i] = c;
        at[c]++;
        st->af[i].scanned = false;
    }
    for (unsigned c = 0, sum = 0; c <= CLASSES; c++) { /* counts to starts */
        unsigned n = at[c];
        at[c] = (uint16_t)sum;
        sum += n;
    }
    uint16_t start[CLASSES + 1];
    memcpy(start, at, sizeof(start));
    for (size_t i = 0; i < st->af_cnt; i++) {
        order[at[cls[i]]++] = (uint16_t)i;
    }
    uint32_t budget = NA_STORY_SCAN_BUDGET;
    for (unsigned c = 0; c < CLASSES; c++) {
        uint32_t lo = c ? 4u << (c - 1) : 0;
        if (lo >= budget) {
            break;
        }
        for (unsigned k = start[c]; k < at[c]; k++) {
            struct afeat *a = &st->af[order[k]];
            uint32_t len = a->stories;
            if (len <= budget) {
                budget -= len;
                a->scanned = true;
            }
        }
    }
}

/*
 * Score the open stories against the article in st->af at time @p t: the
 * candidates (st->cands, the best first, at most NA_STORY_CANDIDATES) with
 * their inputs in @p x and probabilities in @p p.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
static na_err_t score(na_stories_t *st, int64_t t, double anorm[NA_SV_COUNT],
                      double (*x)[NA_SX_COUNT], double *p, size_t *n_out) {
    st->cands_cnt = 0;
    st->slog_cnt = 0;
    memset(anorm, 0, NA_SV_COUNT * sizeof(*anorm));
    for (size_t i = 0; i < st->af_cnt; i++) {
        const struct afeat *a = &st->af[i];
        double w2 = a->w * a->w;
        anorm[a->kind] += w2;
        anorm[NA_SV_TEXT_TITLE] += w2;
        if (a->title) {
            anorm[NA_SV_TITLE] += w2;
        }
    }
    anorm[NA_SV_TITLE_TEXT] = anorm[NA_SV_TITLE];
    for (int v = 0; v < NA_SV_COUNT; v++) {
        anorm[v] = sqrt(anorm[v]);
    }
    choose_scanned(st);
    /* The scan reads the scanned features' postings, then the span, stamp,
     * sums and norms of the stories they name: ask for the postings first,
     * then for the stories (hints, in two passes so that the misses
     * overlap). */
    for (size_t i = 0; i < st->af_cnt; i++) {
        const struct feat *f = &st->feats[st->af[i].fid];
        if (st->af[i].scanned) {
            const char *b = (const char *)f->post;
            const char *e = (const char *)(f->post + f->post_cnt);
            for (; b < e; b += NA_STORY_LINE) {
                NA_PREFETCH(b);
            }
            NA_PREFETCH(e - 1);
        }
    }
    for (size_t i = 0; i < st->af_cnt; i++) {
        const struct feat *f = &st->feats[st->af[i].fid];
        for (uint32_t k = 0; st->af[i].scanned && k < f->post_cnt; k++) {
            const char *sp = (const char *)post_story(st, &f->post[k]);
            for (size_t l = 0; l < NA_STORY_HOT_LINES; l++) {
                NA_PREFETCH(sp + l * NA_STORY_LINE);
            }
        }
    }
    for (size_t i = 0; i < st->af_cnt; i++) {
        const struct afeat *a = &st->af[i];
        const struct feat *f = &st->feats[a->fid];
        if (!a->scanned) {
            continue;
        }
        for (uint32_t k = 0; k < f->post_cnt; k++) {
            const struct post *po = &f->post[k];
            struct story *s = post_story(st, po);
            if (s->stamp != st->seq) {
                if (gap_of(s, t) > st->window_s) {
                    continue;
                }
                s->stamp = st->seq;
                if (!cand_push(st, s)) {
                    return NA_ERR_NOMEM;
                }
            }
            accumulate(acc_of(st, s), a, po->w, po->tw);
            /* at most NA_STORY_SCAN_BUDGET postings are scanned */
            st->slog[st->slog_cnt++] = (struct slog){s, (uint16_t)i, po->sidx};
        }
    }
    /* Rank by the partial cosines; keep the best NA_STORY_CANDIDATES, in
     * order. */
    double ainv[NA_SV_COUNT];
    for (int v = 0; v < NA_SV_COUNT; v++) {
        ainv[v] = anorm[v] > 0 ? 1.0 / anorm[v] : 0;
    }
    size_t kept = 0;
    for (size_t k = 0; k < st->cands_cnt; k++) {
        struct story *s = st->cands[k];
        double rank = 0;
        for (int v = 0; v < NA_SV_COUNT; v++) {
            rank += acc_of(st, s)[v] * s->rinv[v] * ainv[v];
        }
        st->cand_acc[s->cidx].rank = rank;
        size_t at = kept;
        while (at > 0 && ranks_before(st, s, st->cands[at - 1])) {
            at--;
        }
        if (at < NA_STORY_CANDIDATES) {
            size_t last = kept < NA_STORY_CANDIDATES ? kept : NA_STORY_CANDIDATES - 1;
            memmove(&st->cands[at + 1], &st->cands[at], (last - at) * sizeof(*st->cands));
            st->cands[at] = s;
            kept = last + 1;
        }
    }
    /* A candidate whose partial cosines sum to under NA_STORY_RANK_CUT of
     * the best's is dropped: the rare features decide, and the common
     * ones cannot lift it past the best (docs/benchmarks.md, "a cut by
     * rank"). */
    st->ranked_cnt = kept;
    /* (teacher mode: the model is trained on every ranked candidate, as
     * it was before the cut, so that `stories --train` makes the shipped
     * model) */
    while (!st->teach_cb && kept > 1 &&
           st->cand_acc[st->cands[kept - 1]->cidx].rank <
               NA_STORY_RANK_CUT * st->cand_acc[st->cands[0]->cidx].rank) {
        kept--;
    }
    st->cands_cnt = kept;
    /* The common features' share (those not scanned that some story has):
     * each candidate's features are looked up in a table of them, which
     * stays in the cache, and added in the article's order, as the scan
     * added the rare ones'. */
    size_t common = 0;
    for (size_t i = 0; i < st->af_cnt && kept; i++) {
        const struct afeat *a = &st->af[i];
        if (a->scanned || !a->stories) {
            continue;
        }
        uint32_t j = atab_slot(a->fid);
        while (st->atab_key[j]) {
            j = (j + 1) & (NA_STORY_ATAB - 1);
        }
        st->atab_key[j] = a->fid + 1;
        st->atab_at[j] = (uint16_t)i;
        st->atab_used[common++] = (uint16_t)j;
    }
    memset(st->chit_cnt, 0, sizeof(st->chit_cnt));
    for (size_t k = 0; k < kept && common; k++) {
        struct story *s = st->cands[k];
        size_t found = 0;
        if (k + 1 < kept) {
            /* the next candidate's list: asked for while this one is read */
            const struct story *nx = st->cands[k + 1];
            const char *b = (const char *)nx->f;
            const char *e = (const char *)(nx->f + nx->f_cnt);
            for (; b < e; b += NA_STORY_LINE) {
                NA_PREFETCH(b);
            }
        }
        /* First a filter without a branch: a feature whose first slot is
         * empty is not the article's (one that fails is written over by
         * the next). With at most NA_STORY_ART_FEATURES of NA_STORY_ATAB
         * slots filled, a few in a hundred pass it that are not. Then the
         * table for those it let through: a probe nearly always ends at
         * its first slot. A hit is noted by the article's order (hit[],
         * and its bit in hmask), so that the sums are added in that order
         * as the scan added the rare ones'. */
        uint64_t hmask[(NA_STORY_ART_FEATURES + 63) / 64] = {0};
        for (uint32_t m0 = 0; m0 < s->f_cnt && found < common; m0 += NA_STORY_MAYBE) {
            uint32_t m1 = s->f_cnt - m0 > NA_STORY_MAYBE ? m0 + NA_STORY_MAYBE : s->f_cnt;
            uint32_t nm = 0;
            for (uint32_t m = m0; m < m1; m++) {
                st->maybe[nm] = m;
                nm += st->atab_key[atab_slot(s->f[m].fid)] != 0;
            }
            for (uint32_t q = 0; q < nm; q++) {
                uint32_t m = st->maybe[q];
                uint32_t key = s->f[m].fid + 1;
                uint32_t j = atab_slot(key - 1);
                uint32_t e = st->atab_key[j];
                while (e != key && e != 0) {
                    j = (j + 1) & (NA_STORY_ATAB - 1);
                    e = st->atab_key[j];
                }
                if (e == key) {
                    uint32_t i = st->atab_at[j];
                    st->hit[i] = m;
                    hmask[i / 64] |= (uint64_t)1 << (i % 64);
                    found++;
                }
            }
        }
        for (size_t w = 0; w < sizeof(hmask) / sizeof(hmask[0]); w++) {
            for (uint64_t bits = hmask[w]; bits; bits &= bits - 1) {
                size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
                const struct sfeat *sf = &s->f[st->hit[i]];
                accumulate(acc_of(st, s), &st->af[i], sf->w, sf->tw);
                st->chit_i[k][st->chit_cnt[k]] = (uint16_t)i;
                st->chit_m[k][st->chit_cnt[k]++] = st->hit[i];
            }
        }
    }
    /* the table empty again for the next article: only its used slots */
    for (size_t i = 0; i < common; i++) {
        st->atab_key[st->atab_used[i]] = 0;
    }
    for (size_t k = 0; k < kept; k++) {
        inputs_of(st, st->cands[k], anorm, t, x[k]);
        p[k] = na_story_model_prob(st->model, x[k]);
    }
    *n_out = kept;
    return NA_OK;
}

void na_stories_set_verify(na_stories_t *st, struct na_story_verify *v) {
    st->verify = v;
}

static void verify_fail(struct na_story_verify *v, const char *what, const char *id) {
    if (!v->bad++) {
        snprintf(v->why, sizeof(v->why), "%s (story %s)", what, id);
    }
}

/* na_stories_set_verify(): check what score() found for the article in
 * st->af against the plain computations. */
static void verify_scores(na_stories_t *st) {
    struct na_story_verify *v = st->verify;
    bool want[NA_STORY_ART_FEATURES] = {false};
    uint32_t budget = NA_STORY_SCAN_BUDGET;
    v->articles++;
    for (uint32_t lo = 0, hi = 4; lo < budget; lo = hi, hi *= 2) {
        for (size_t i = 0; i < st->af_cnt; i++) {
            uint32_t len = st->feats[st->af[i].fid].post_cnt;
            if (len > lo && len <= hi && len <= budget &&
                !st->feats[st->af[i].fid].unlisted) {
                budget -= len;
                want[i] = true;
            }
        }
    }
    for (size_t i = 0; i < st->af_cnt; i++) {
        if (want[i] != st->af[i].scanned) {
            verify_fail(v, "the features scanned are not the rarest", "-");
            return;
        }
    }
    /* the rank cut: those kept rank at least NA_STORY_RANK_CUT of the
     * best, those dropped less, in rank order */
    for (size_t k = 0; k < st->ranked_cnt; k++) {
        double r = st->cand_acc[st->cands[k]->cidx].rank;
        double best = st->cand_acc[st->cands[0]->cidx].rank;
        double prev = k ? st->cand_acc[st->cands[k - 1]->cidx].rank : r;
        bool keep = k == 0 || r >= NA_STORY_RANK_CUT * best || st->teach_cb;
        if (r > prev || (k < st->cands_cnt) != keep) {
            verify_fail(v, "the rank cut kept the wrong candidates", st->cands[k]->id);
            return;
        }
    }
    v->cut += st->ranked_cnt - st->cands_cnt;
    for (size_t k = 0; k < st->cands_cnt; k++) {
        struct story *s = st->cands[k];
        double acc[NA_SV_COUNT] = {0};
        if (!story_index(st, s)) {
            continue; /* no memory: not checked */
        }
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < st->af_cnt; i++) {
                const struct sfeat *x = sf_find(s, st->af[i].fid);
                if (x && st->af[i].scanned == (pass == 0)) {
                    accumulate(acc, &st->af[i], x->w, x->tw);
                    v->late_hits += pass == 1 && i >= 64;
                }
            }
        }
        v->candidates++;
        if (memcmp(acc, acc_of(st, s), sizeof(acc)) != 0) {
            verify_fail(v, "a candidate's dot products differ", s->id);
        }
    }
}

/* The places in @p s->f of the article's features (st->af order;
 * UINT32_MAX: not in it) into st->add[].at, as score() found them when
 * @p s is its candidate @p k: the scan's postings name the rare ones',
 * the common-feature pass the others'. Every feature of the article that
 * a story has is one of the two. */
static void places_of(na_stories_t *st, const struct story *s, size_t k) {
    for (size_t i = 0; i < st->af_cnt; i++) {
        st->add[i].at = UINT32_MAX;
    }
    for (size_t e = 0; e < st->slog_cnt; e++) {
        if (st->slog[e].s == s) {
            st->add[st->slog[e].i].at = st->slog[e].sidx;
        }
    }
    for (size_t e = 0; e < st->chit_cnt[k]; e++) {
        st->add[st->chit_i[k][e]].at = st->chit_m[k][e];
    }
}

/* Put the article in st->af into @p s (new or open); @p cand: its place
 * among the candidates score() left, or SIZE_MAX. A story with no
 * features yet (one just opened) has none of the article's either: no
 * index is made to find that out. */
static na_err_t join(na_stories_t *st, struct story *s, int64_t t, size_t cand) {
    struct add *add = st->add;
    bool at_known = cand != SIZE_MAX || s->f_cnt == 0;
    na_err_t err;
    if (cand != SIZE_MAX) {
        places_of(st, s, cand);
    } else if (at_known) {
        for (size_t i = 0; i < st->af_cnt; i++) {
            add[i].at = UINT32_MAX;
        }
    }
    for (size_t i = 0; i < st->af_cnt; i++) {
        const struct afeat *a = &st->af[i];
        add[i] = (struct add){
            a->fid, 1, a->title, (float)a->w, a->title ? (float)a->w : 0, add[i].at};
    }
    if ((err = story_add(st, s, add, st->af_cnt, at_known))) {
        return err;
    }
    s->n++;
    story_touch(st, s, t);
    return NA_OK;
}

static na_err_t assign(na_stories_t *st, const struct na_article *a,
                       const struct na_story_read_s *rd, const char *event,
                       char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new,
                       size_t *positives_missed) {
    double x[NA_STORY_CANDIDATES][NA_SX_COUNT];
    double p[NA_STORY_CANDIDATES];
    double anorm[NA_SV_COUNT];
    size_t n = 0;
    struct story *best = NULL;
    bool created = false;
    na_err_t err;
    int64_t t = article_time(st, a);

    if (is_new) {
        *is_new = false;
    }
    if (!rd || rd->of != a) {
        if ((err = na_story_read(&st->rd, a))) {
            return err;
        }
        rd = &st->rd;
    }
    if (st->now == NA_TIME_UNKNOWN || t > st->now) {
        st->now = t;
    }
    close_due(st);
    if (st->compact_due) {
        dict_compact(st);
    }
    if ((err = read_article(st, rd)) || (err = score(st, t, anorm, x, p, &n))) {
        return err;
    }
    if (st->verify) {
        verify_scores(st);
    }
    if (st->teach_cb) {
        bool found = false;
        for (size_t k = 0; k < n; k++) {
            bool same = st->cands[k]->event && !strcmp(st->cands[k]->event, event);
            st->teach_cb(st->teach_ctx, x[k], same);
            if (same && !found) {
                best = st->cands[k];
                found = true;
            }
        }
        for (size_t k = 0; !best && k < st->stories_cnt; k++) {
            struct story *s = st->stories[k];
            if (s->event && !strcmp(s->event, event) && gap_of(s, t) <= st->window_s) {
                best = s;
            }
        }
        if (best && !found && positives_missed) {
            (*positives_missed)++;
        }
    } else {
        double best_p = 0;
        for (size_t k = 0; k < n; k++) {
            if (p[k] > best_p) { /* in rank order: on a tie the better ranked */
                best_p = p[k];
                best = st->cands[k];
            }
        }
        if (best_p < st->model->threshold) {
            best = NULL;
        }
    }
    if (!best) {
        /* its id was made with its features (na_story_read()) */
        best = story_find(st, rd->new_id);
        if (!best) {
            close_for_room(st);
            if (!(best = story_new(st, rd->new_id, t))) {
                return NA_ERR_NOMEM;
            }
            if (event && !(best->event = na_strdup(event))) {
                story_close(st, best);
                return NA_ERR_NOMEM;
            }
            created = true;
        }
    }
    /* a story score() left as a candidate (not one just opened: its
     * memory may be a closed candidate's) joins at the places it found */
    size_t cand = SIZE_MAX;
    for (size_t k = 0; !created && k < n; k++) {
        if (st->cands[k] == best) {
            cand = k;
        }
    }
    if ((err = join(st, best, t, cand))) {
        if (created) {
            story_close(st, best);
        }
        return err;
    }
    if (created && is_new) {
        *is_new = true;
    }
    na_metric_add(created ? st->m_opened : st->m_joined, 1);
    na_metric_set(st->m_open, (double)st->stories_cnt);
    memcpy(story_id, best->id, NA_SHA256_HEX_LEN + 1);
    return NA_OK;
}

na_err_t na_stories_assign(na_stories_t *st, const struct na_article *a,
                           char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new) {
    return assign(st, a, NULL, NULL, story_id, is_new, NULL);
}

na_err_t na_stories_assign_read(na_stories_t *st, const struct na_article *a,
                                const na_story_read_t *r,
                                char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new) {
    return assign(st, a, r, NULL, story_id, is_new, NULL);
}

na_err_t na_stories_assign_labelled(na_stories_t *st, const struct na_article *a,
                                    const char *event,
                                    char story_id[NA_SHA256_HEX_LEN + 1],
                                    size_t *positives_missed) {
    return assign(st, a, NULL, event, story_id, NULL, positives_missed);
}

bool na_stories_check(na_stories_t *st, size_t *unlisted, char *why, size_t why_size) {
    uint32_t *cnt = calloc(st->feats_cnt + 1, sizeof(*cnt));
    bool ok = true;
    if (!cnt) {
        snprintf(why, why_size, "no memory");
        return false;
    }
    for (size_t k = 0; k < st->stories_cnt && ok; k++) {
        struct story *s = st->stories[k];
        if (!story_index(st, s)) {
            snprintf(why, why_size, "no memory");
            ok = false;
        }
        for (uint32_t i = 0; i < s->f_cnt && ok; i++) {
            const struct sfeat *x = &s->f[i];
            const struct feat *f = x->fid < st->feats_cnt && !st->feats[x->fid].gone
                                       ? &st->feats[x->fid]
                                       : NULL;
            const struct post *p =
                f && !f->unlisted && x->pidx < f->post_cnt ? &f->post[x->pidx] : NULL;
            if (!f) {
                snprintf(why, why_size, "story %s: feature id %u unknown", s->id, x->fid);
                ok = false;
            } else if (sf_find(s, x->fid) != x) {
                snprintf(why, why_size, "story %s: %s not found by its index", s->id,
                         st->ftext[x->fid]);
                ok = false;
            } else if (f->unlisted ? x->pidx != NA_STORY_NO_POST
                                   : !p || post_story(st, p) != s || p->sidx != i ||
                                         p->w != x->w || p->tw != x->tw) {
                snprintf(why, why_size, "story %s: %s: posting %u does not match", s->id,
                         st->ftext[x->fid], x->pidx);
                ok = false;
            } else {
                cnt[x->fid]++;
            }
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < st->feats_cnt && ok; i++) {
        const struct feat *f = &st->feats[i];
        if (cnt[i] != f->post_cnt) {
            snprintf(why, why_size, "%s: in %u stories, counts %u", st->ftext[i], cnt[i],
                     f->post_cnt);
            ok = false;
        } else if (f->unlisted && f->post_cnt <= NA_STORY_RELIST_AT && !f->relist_due) {
            snprintf(why, why_size, "%s: unlisted in only %u stories, not noted",
                     st->ftext[i], f->post_cnt);
            ok = false;
        }
        off += f->unlisted;
    }
    free(cnt);
    if (unlisted) {
        *unlisted = off;
    }
    return ok;
}

/* ---------------------------------------------------------------- */
/* Signatures and seeds                                             */
/* ---------------------------------------------------------------- */

json_t *na_story_signature(const na_stories_t *st, const char *story_id) {
    const struct story *s = story_find(st, story_id);
    struct kfeat *kv = NULL;
    json_t *f = NULL, *tf = NULL, *root = NULL;
    if (!s) {
        return NULL;
    }
    /* The features that most articles had, then the heaviest, so a stored
     * signature stays a few KB. */
    kv = kfeat_copy(st, s, 0);
    f = json_object();
    tf = json_object();
    root = json_pack("{s:i, s:I, s:I, s:I}", "v", 2, "t0", (json_int_t)s->first, "t",
                     (json_int_t)s->last, "n", (json_int_t)s->n);
    if (!kv || !f || !tf || !root) {
        goto fail;
    }
    if (s->f_cnt > 1) {
        qsort(kv, s->f_cnt, sizeof(*kv), keep_cmp);
    }
    for (size_t i = 0; i < s->f_cnt && i < NA_STORY_SIG_FEATURES; i++) {
        const char *key = st->ftext[kv[i].f.fid];
        if (json_object_set_new(f, key, json_integer(kv[i].c.cnt)) ||
            (kv[i].c.tcnt && json_object_set_new(tf, key, json_integer(kv[i].c.tcnt)))) {
            goto fail;
        }
    }
    if (json_object_set_new(root, "f", f)) {
        f = NULL;
        goto fail;
    }
    f = NULL;
    if (json_object_set_new(root, "tf", tf)) {
        tf = NULL;
        goto fail;
    }
    free(kv);
    return root;
fail:
    free(kv);
    json_decref(f);
    json_decref(tf);
    json_decref(root);
    return NULL;
}

static bool hex_id(const char *id) {
    if (!id || strlen(id) != NA_SHA256_HEX_LEN) {
        return false;
    }
    for (size_t i = 0; i < NA_SHA256_HEX_LEN; i++) {
        if (!isxdigit((unsigned char)id[i])) {
            return false;
        }
    }
    return true;
}

/* Is the signature member @p v, when there, a time an RFC 3339 date can
 * say (years 0000 to 9999)? Further out, the story clock's sums overflow. */
static bool sig_time_ok(const json_t *v) {
    json_int_t t = json_integer_value(v);
    return !v || (json_is_integer(v) && t >= -62167219200LL && t <= 253402300799LL);
}

static bool feature_key_ok(const char *key) {
    size_t len = strlen(key);
    return len >= 3 && len < NA_STORY_FEATURE_BYTES && key[1] == ':' &&
           (key[0] == 't' || key[0] == 'e' || key[0] == 'n' || key[0] == 'd');
}

/* Drop every feature of @p s (its postings too); its sums restart. */
static void story_clear(na_stories_t *st, struct story *s) {
    post_del_all(st, s->f, s->f_cnt);
    s->f_cnt = 0;
    s->n = 0;
    story_rehash(s);
    memset(s->sq, 0, sizeof(s->sq));
    story_inv(s);
}

na_err_t na_stories_seed(na_stories_t *st, const char *story_id, const json_t *signature,
                         int64_t published_at) {
    json_t *f = json_object_get(signature, "f");
    json_t *tf = json_object_get(signature, "tf");
    json_t *n = json_object_get(signature, "n");
    json_t *t = json_object_get(signature, "t");
    json_t *t0 = json_object_get(signature, "t0");
    struct add *add = NULL;
    size_t cnt = 0;
    const char *key;
    json_t *val;
    int64_t first;
    na_err_t err = NA_OK;

    /* a signature holds NA_STORY_SIG_FEATURES features; more than a story
     * can hold is a record no engine wrote */
    if (!hex_id(story_id) || !json_is_object(f) ||
        json_object_size(f) > NA_STORY_MAX_FEATURES || !json_is_integer(n) ||
        json_integer_value(n) < 1 || json_integer_value(n) > UINT32_MAX / 2 ||
        (tf && !json_is_object(tf)) || !sig_time_ok(t0) || !sig_time_ok(t) ||
        (published_at == NA_TIME_UNKNOWN && !json_is_integer(t))) {
        return NA_ERR_INVALID;
    }
    uint32_t articles = (uint32_t)json_integer_value(n);
    if (published_at == NA_TIME_UNKNOWN) {
        published_at = (int64_t)json_integer_value(t);
    }
    if (published_at > latest_believable()) {
        published_at = latest_believable(); /* as article_time() */
    }
    first = t0 ? (int64_t)json_integer_value(t0) : published_at;
    if (first > published_at) {
        first = published_at;
    }
    json_object_foreach((json_t *)f, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 1 ||
            !feature_key_ok(key)) {
            return NA_ERR_INVALID;
        }
    }
    json_object_foreach((json_t *)tf, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 1 ||
            !json_object_get(f, key)) {
            return NA_ERR_INVALID;
        }
    }
    if (st->reorder_s >= 0 && st->now != NA_TIME_UNKNOWN &&
        published_at < st->now - st->window_s - st->reorder_s) {
        return NA_OK;
    }
    struct story *s = story_find(st, story_id);
    if (s && s->n >= articles) {
        story_touch(st, s, first);
        story_touch(st, s, published_at);
        return NA_OK; /* the one open here is the same snapshot or a later one */
    }
    if (st->compact_due) {
        dict_compact(st);
    }
    add = malloc((json_object_size(f) + 1) * sizeof(*add));
    if (!add) {
        return NA_ERR_NOMEM;
    }
    json_object_foreach((json_t *)f, key, val) {
        uint32_t fid = feat_id(st, key, strlen(key), true);
        if (fid == UINT32_MAX) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        json_int_t c = json_integer_value(val);
        json_int_t tc = json_integer_value(json_object_get(tf, key));
        c = c > (json_int_t)articles ? (json_int_t)articles : c;
        tc = tc > c ? c : tc < 0 ? 0 : tc;
        add[cnt++] = (struct add){fid, (uint32_t)c, (uint32_t)tc, 0, 0, UINT32_MAX};
    }
    /* Room first (the story, its list, a posting a feature), so that
     * nothing counted or changed below can fail: a snapshot that cannot be
     * seeded leaves the engine as it was, an open story as its earlier
     * snapshot made it. The list of an open story is emptied below: room
     * for the larger of what it holds and what replaces it. */
    bool created = false;
    if (!s) {
        close_for_room(st);
        if (!(s = story_new(st, story_id, first))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        created = true;
    }
    bool room = story_reserve(st, s, cnt > s->f_cnt ? cnt - s->f_cnt : 0);
    for (size_t i = 0; room && i < cnt; i++) {
        struct feat *fe = &st->feats[add[i].fid];
        room = fe->unlisted || post_reserve(st, fe);
    }
    if (!room) {
        if (created) {
            story_close(st, s);
        }
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!created) {
        /* The snapshot replaces what the story counted (its earlier one and
         * the articles it took since): its articles are documents once. */
        for (uint32_t i = 0; i < s->f_cnt; i++) {
            struct feat *fe = &st->feats[s->f[i].fid];
            df_add(st, s->f[i].fid, -fmin((double)s->c[i].cnt, fe->df));
        }
        st->docs -= fmin((double)s->n, st->docs);
    }
    for (size_t i = 0; i < cnt; i++) {
        df_add(st, add[i].fid, add[i].cnt);
    }
    docs_add(st, articles);
    /* Weighed as articles with the feature once would be now. */
    for (size_t i = 0; i < cnt; i++) {
        double idf = feat_idf(st, add[i].fid);
        add[i].w = (float)(idf * add[i].cnt);
        add[i].tw = (float)(idf * add[i].tcnt);
    }
    if (!created) {
        story_clear(st, s);
    }
    /* an empty story has none of the features (at UINT32_MAX): no index is
     * looked in, nothing is allocated */
    if ((err = story_add(st, s, add, cnt, true))) {
        goto out; /* not reached: the room is there */
    }
    s->n = articles;
    story_touch(st, s, first);
    story_touch(st, s, published_at);
    if (st->now == NA_TIME_UNKNOWN || published_at > st->now) {
        st->now = published_at;
        /* a restart reads the whole ledger, oldest first: what the clock
         * left behind closes now, not at the first article */
        close_due(st);
    }
    na_metric_set(st->m_open, (double)st->stories_cnt);
out:
    free(add);
    return err;
}

na_err_t na_stories_seed_record(na_stories_t *st, const json_t *value,
                                const char **story_id) {
    json_t *story = json_object_get(value, "story");
    const char *sid = json_string_value(json_object_get(story, "id"));
    const char *published = json_string_value(
        json_object_get(json_object_get(value, "article"), "published_at"));
    int64_t t = NA_TIME_UNKNOWN;
    *story_id = sid;
    if (!sid || !json_is_object(json_object_get(story, "signature"))) {
        return NA_OK;
    }
    if (published && na_time_parse_rfc3339(published, &t)) {
        t = NA_TIME_UNKNOWN;
    }
    return na_stories_seed(st, sid, json_object_get(story, "signature"), t);
}
