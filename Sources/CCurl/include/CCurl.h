#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>

/// Typed wrappers for libcurl's variadic calls, which Swift cannot call directly.

typedef size_t (*kar_curl_data_callback)(char *data, size_t size, size_t count, void *context);

CURLcode kar_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode kar_curl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode kar_curl_easy_setopt_callback(CURL *handle, CURLoption option, kar_curl_data_callback callback);
/// Sets a blob option (CA bundle, client certificate or key); libcurl copies the bytes.
CURLcode kar_curl_easy_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length);
CURLcode kar_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode kar_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);
CURLMcode kar_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
/// The easy handle and result of a CURLMSG_DONE message, or NULL.
CURL *kar_curl_multi_done(CURLM *multi, CURLcode *result);

#endif
