/**
 * @file story_text_ref.h
 * @brief The story engine's text reader as it was before the one-pass
 *        reader (story_text_ref.c), the reference tests/unit/test_story.c
 *        compares na_story_text_features() with; no daemon links it.
 */
#ifndef NEWSALERT_TESTS_STORY_TEXT_REF_H
#define NEWSALERT_TESTS_STORY_TEXT_REF_H

#include <stddef.h>

#include "newsalert/err.h"
#include "story_internal.h"

/**
 * @brief As na_story_text_features() (story_internal.h), the old way, with
 *        buffers of its own.
 * @returns NA_OK, or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_story_text_features_ref(const char *s, size_t len,
                                           na_story_emit_cb *emit, void *ctx);

#endif
