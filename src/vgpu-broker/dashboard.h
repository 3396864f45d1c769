/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dashboard.h — what the web dashboard needs of the broker: its static files, who the caller is
 * (may it cordon?), and a ring of recent fleet events seen in the watch. */
#pragma once

#include <stdbool.h>

#include "broker.h"

/* dashboard.c */
/* "/", "/index.html", "/dashboard.js", "/dashboard.css": served without a token (the page asks
 * for one), as is /v1/whoami (it says whether the token given is good). */
bool dashboard_open_path(const char *path);
bool dashboard_static_path(const char *path);
void dashboard_static(struct broker *b, const struct api_request *req, struct api_reply *reply);
void api_whoami(struct broker *b, const struct api_request *req, struct api_reply *reply);

/* events.c */
/* The cache's changes (cache.c, under its write lock, not while listing): joins, leaves, claim
 * states, cordons and health changes become lines of text in a ring of the last EVENTS_MAX.
 * events_put: entry e (its value as cached, e->valid) becomes nv (NULL: undecodable) at rev;
 * events_delete: e is deleted at rev. */
#define EVENTS_MAX 256
void events_put(struct broker *b, const struct entry *e, const union entry_value *nv, int64_t rev);
void events_delete(struct broker *b, const struct entry *e, int64_t rev);
void api_events(struct broker *b, struct api_reply *reply);
