/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * curl-dl.h — libcurl, loaded with dlopen() on first use, for the etcd client (lib/fleet) and
 * vgpuctl's calls to vgpud and vgpu-broker.
 *
 * Linked, libcurl and its 30-odd libraries would cost every vgpuctl command about 4 ms at start
 * (src/vgpuctl/daemon-client.c measured it), `list` included, though only the commands that talk
 * to a daemon, vgpud in a fleet and the broker use HTTP. Part of the vgpu-dl archive, which
 * libvgpu and vgpuctl both link: vgpuctl uses libvgpu's public API only, and libvgpu.so does not
 * export this.
 */
#pragma once

#include <curl/curl.h>
#include <stddef.h>

struct curl_dl {
        __typeof__(curl_global_init) *global_init;
        __typeof__(curl_easy_init) *easy_init;
        __typeof__(curl_easy_setopt) *easy_setopt;
        __typeof__(curl_easy_perform) *easy_perform;
        __typeof__(curl_easy_getinfo) *easy_getinfo;
        __typeof__(curl_easy_cleanup) *easy_cleanup;
        __typeof__(curl_easy_strerror) *easy_strerror;
        __typeof__(curl_slist_append) *slist_append;
        __typeof__(curl_slist_free_all) *slist_free_all;
        __typeof__(curl_multi_init) *multi_init;
        __typeof__(curl_multi_add_handle) *multi_add_handle;
        __typeof__(curl_multi_remove_handle) *multi_remove_handle;
        __typeof__(curl_multi_perform) *multi_perform;
        __typeof__(curl_multi_poll) *multi_poll;
        __typeof__(curl_multi_info_read) *multi_info_read;
        __typeof__(curl_multi_cleanup) *multi_cleanup;
        __typeof__(curl_version_info) *version_info;
};

/* libcurl's functions, loaded and curl_global_init()ed once (any thread may call this), or NULL
 * with why in ret_error. Never unloaded: libcurl keeps global state. */
const struct curl_dl *curl_load(char *ret_error, size_t size);
