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

/// Drives a multi handle through libcurl's socket interface (`curl_multi_socket_action`) on an epoll set of its
/// own, so the cost of a wake-up is that of the sockets that are ready, not of every transfer in flight (which is
/// what `curl_multi_poll` costs). One thread only calls `kar_curl_driver_run`; any thread may call `..._wake`.
typedef struct kar_curl_driver kar_curl_driver;

/// Installs the socket and timer callbacks on `multi`; NULL (errno set) when epoll or eventfd cannot be made.
kar_curl_driver *kar_curl_driver_create(CURLM *multi);
/// Waits up to `max_wait_ms` for ready sockets, curl's timer or a wake-up, and lets libcurl act on them.
/// Returns 1 when woken, 0 otherwise, -1 (errno set) when epoll_wait failed.
int kar_curl_driver_run(kar_curl_driver *driver, int max_wait_ms);
/// Lets libcurl act at once (call after adding or removing easy handles).
void kar_curl_driver_kick(kar_curl_driver *driver);
/// Interrupts `kar_curl_driver_run` from any thread.
void kar_curl_driver_wake(kar_curl_driver *driver);
/// Closes the epoll set and eventfd (call after `curl_multi_cleanup`).
void kar_curl_driver_destroy(kar_curl_driver *driver);

#endif
