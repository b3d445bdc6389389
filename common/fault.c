#include "newsalert/fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/log.h"

#define FAULT_MAX_POINTS 16
#define FAULT_MAX_NAME 48

struct point {
    char name[FAULT_MAX_NAME];
    long left;
};

static struct point points[FAULT_MAX_POINTS];
static int points_cnt;
static int state; /* 0: environment not read yet, 1: read */
/* Worker threads (classify) pass fault points too: the table is guarded,
 * and with nothing armed a call reads one atomic and returns. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static atomic_long armed; /* hits left over every point */

static void arm(const char *spec) {
    points_cnt = 0;
    state = 1;
    atomic_store(&armed, 0);
    for (const char *p = spec; p && *p && points_cnt < FAULT_MAX_POINTS;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tok[FAULT_MAX_NAME + 24];
        long count = 1;
        if (len && len < sizeof(tok)) {
            memcpy(tok, p, len);
            tok[len] = '\0';
            char *colon = strchr(tok, ':');
            if (colon) {
                char *end;
                *colon = '\0';
                errno = 0;
                count = strtol(colon + 1, &end, 10);
                if (errno || end == colon + 1 || *end || count < 1) {
                    count = 0;
                }
            }
            if (count > 0 && *tok && strlen(tok) < FAULT_MAX_NAME) {
                memcpy(points[points_cnt].name, tok, strlen(tok) + 1);
                points[points_cnt].left = count;
                points_cnt++;
                atomic_fetch_add(&armed, count);
                na_log(NA_LOG_WARN, "fault", "armed", "point=%s count=%ld", na_log_q(tok),
                       count);
            } else {
                na_log(NA_LOG_WARN, "fault", "bad_spec", "point=%s", na_log_q(tok));
            }
        }
        p = comma ? comma + 1 : NULL;
    }
}

void na_fault_arm(const char *spec) {
    pthread_mutex_lock(&lock);
    arm(spec);
    pthread_mutex_unlock(&lock);
}

static void arm_from_env(void) {
    pthread_mutex_lock(&lock);
    if (!state) {
        arm(getenv("NEWSALERT_FAULTS"));
    }
    pthread_mutex_unlock(&lock);
}

bool na_fault(const char *name) {
    bool hit = false;
    long left = 0;
    pthread_once(&env_once, arm_from_env);
    if (!atomic_load(&armed)) {
        return false;
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < points_cnt && !hit; i++) {
        if (points[i].left > 0 && !strcmp(points[i].name, name)) {
            left = --points[i].left;
            atomic_fetch_sub(&armed, 1);
            hit = true;
        }
    }
    pthread_mutex_unlock(&lock);
    if (hit) {
        na_log(NA_LOG_WARN, "fault", "hit", "point=%s left=%ld", na_log_q(name), left);
    }
    return hit;
}
