/*
 * napi_util: what every binding of the addon shares at its JS boundary.
 *
 * Owns: errno names and the throw helpers (every exception the addon raises
 * is made here), the ONE argument parser that every binding's preamble goes
 * through (PARSE_ARGS over a table of ARG_* specs), and the batch checks
 * (slot bounds, array lengths, IPv4 ports) that run before any byte of a
 * batch is touched.
 *
 * Flow: a binding calls PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem",
 * &mem, &memLen), ...). The parser reads argv in order, type- and
 * range-checks each argument into its C variable, then checks every array's
 * minimum length (ARG_*_N: at least k * n entries, n parsed in the same call)
 * in spec order. The first failure throws (TypeError ERR_INVALID_ARG_TYPE,
 * RangeError ERR_OUT_OF_RANGE, or a generic ERR_NATIVE_INTERNAL) and the
 * parser returns nonzero; the binding returns NULL. Messages read
 * "<fn>: <what>", e.g. "tunReadBatch: offsets must be a Int32Array".
 */
#ifndef LWT_NAPI_UTIL_H
#define LWT_NAPI_UTIL_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- throwing ---- */

/* Throws Error{ code: 'E…', syscall, errno: -e } with message "<fn>: <syscall> failed: <strerror> (<CODE>)". */
void throw_errno(napi_env env, int e, const char *fn, const char *syscall);
/* TypeError ERR_INVALID_ARG_TYPE "<fn>: <what>". */
void throw_type(napi_env env, const char *fn, const char *what);
/* RangeError ERR_OUT_OF_RANGE "<fn>: <what>". */
void throw_range(napi_env env, const char *fn, const char *what);
/* Any napi failure that is not the caller's fault: keep a pending exception, else throw a generic one. */
void throw_internal(napi_env env, const char *fn);

/* A JS number from an int64 (NULL on failure, which N-API reads as undefined). */
napi_value make_int(napi_env env, int64_t x);

/* ---- the argument parser ---- */

typedef enum { ARG_K_FD, ARG_K_INT, ARG_K_BOOL, ARG_K_STRING, ARG_K_ARRAY, ARG_K_FUNCTION, ARG_K_VALUE } arg_kind;

/* One argument: what it must be and where it goes. Built by the ARG_* macros below, never by hand. */
typedef struct {
  arg_kind kind;
  const char *name;          /* as the error message names it */
  void *out;                 /* int * (fd), int64_t * (int), bool *, char * (string buffer), void ** (array data), napi_value * */
  size_t *len;               /* array: its element count, if wanted (may be NULL) */
  napi_typedarray_type ta;   /* array: the wanted kind */
  int64_t min, max;          /* int: the inclusive range; string: max = the longest allowed, in UTF-8 bytes */
  int64_t mult;              /* array: needs at least mult * *per entries (*per = 1 when per is NULL); 0 = no check */
  const int64_t *per;
} arg_spec;

/* The conditional expression makes the compiler check that p has the type the kind writes through. */
#define ARG_OUT_(ctype, p) ((void *)(1 ? (p) : (ctype *)0))
/* An fd: an integer in [0, INT32_MAX], named "fd". p: int *. */
#define ARG_FD(p) { ARG_K_FD, "fd", ARG_OUT_(int, p), NULL, napi_int8_array, 0, INT32_MAX, 0, NULL }
/* An integral Number in [lo, hi]. p: int64_t *. */
#define ARG_INT(name, lo, hi, p) { ARG_K_INT, name, ARG_OUT_(int64_t, p), NULL, napi_int8_array, lo, hi, 0, NULL }
#define ARG_BOOL(name, p) { ARG_K_BOOL, name, ARG_OUT_(bool, p), NULL, napi_int8_array, 0, 0, 0, NULL }
/* A string of at most maxLen UTF-8 bytes and no NUL, copied into buf (which holds maxLen + 1). */
#define ARG_STRING(name, buf, maxLen) { ARG_K_STRING, name, ARG_OUT_(char, buf), NULL, napi_int8_array, 0, (int64_t)(maxLen), 0, NULL }
#define ARG_FUNCTION(name, p) { ARG_K_FUNCTION, name, ARG_OUT_(napi_value, p), NULL, napi_int8_array, 0, 0, 0, NULL }
/* Any value, unchecked, for a binding to judge itself (a poll handle, say). */
#define ARG_VALUE(p) { ARG_K_VALUE, "", ARG_OUT_(napi_value, p), NULL, napi_int8_array, 0, 0, 0, NULL }

/* Typed arrays: p points at the element pointer (uint8_t **, int32_t **, ...); n (size_t *, or NULL) gets the length. */
#define ARG_TA_(name, type, ctype, p, n, k, per) \
  { ARG_K_ARRAY, name, ARG_OUT_(ctype *, p), n, type, 0, 0, k, per }
#define ARG_U8(name, p, n) ARG_TA_(name, napi_uint8_array, uint8_t, p, n, 0, NULL)
/* ... holding at least k * *n entries (n: an int64_t parsed by the same call, before or after this one). */
#define ARG_I32_N(name, p, k, n) ARG_TA_(name, napi_int32_array, int32_t, p, NULL, k, n)
#define ARG_U32_N(name, p, k, n) ARG_TA_(name, napi_uint32_array, uint32_t, p, NULL, k, n)
/* ... holding at least `words` entries (a fixed layout shared with JS). */
#define ARG_I32_W(name, p, words) ARG_TA_(name, napi_int32_array, int32_t, p, NULL, words, NULL)

/* argv[0..want) of this call; missing arguments read as undefined (and fail their type check). */
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn);
/* Parses argv[0..n) by specs[0..n). Returns 0, or -1 with an exception pending. */
int parse_argv(napi_env env, const char *fn, napi_value *argv, const arg_spec *specs, size_t n);
/* Both in one: the usual preamble. */
int parse_args(napi_env env, napi_callback_info info, const char *fn, const arg_spec *specs, size_t n);
#define ARG_SPECS_(...) ((const arg_spec[]){ __VA_ARGS__ })
#define ARG_COUNT_(...) (sizeof ARG_SPECS_(__VA_ARGS__) / sizeof(arg_spec))
#define PARSE_ARGS(env, info, fn, ...) parse_args(env, info, fn, ARG_SPECS_(__VA_ARGS__), ARG_COUNT_(__VA_ARGS__))
#define PARSE_ARGV(env, fn, argv, ...) parse_argv(env, fn, argv, ARG_SPECS_(__VA_ARGS__), ARG_COUNT_(__VA_ARGS__))

/* argv[0..argc) of this call with argv[0] parsed as the fd; for a binding that parses the rest (argv + 1) with a shared helper. */
int get_fd_args(napi_env env, napi_callback_info info, const char *fn, size_t argc, napi_value *argv, int *fd);

/* One typed array of the wanted kind (for tables parsed outside PARSE_ARGS); data points at the view's first element. */
int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *fn, const char *name, void **data, size_t *len);

/* ---- batch checks: each returns 0, or -1 with a RangeError thrown ---- */

/* `arr` holds `have` entries; at least `need` are needed. */
int check_count(napi_env env, const char *fn, const char *arr, size_t have, int64_t need);
/*
 * For i < n: offsets[i] >= 0, lens[i] (or cap) >= 0 and offsets[i] + len <=
 * memLen. lens == NULL means every slot has length cap.
 */
int check_slots(napi_env env, const char *fn, size_t memLen, const int32_t *offsets, const int32_t *lens, int64_t cap, int64_t n);

/*
 * The arguments every batch writer shares, after the fd:
 * (mem, offsets, lens[, addrs], n), type- and bounds-checked: each
 * [offsets[i], offsets[i] + lens[i]) lies inside mem, and addrs (when asked
 * for) holds n valid ip/port pairs (addrs[2i] host-order IPv4, addrs[2i+1]
 * port <= 65535).
 */
typedef struct { uint8_t *mem; size_t memLen; int32_t *offsets, *lens; uint32_t *addrs; int64_t n; } packet_args;
int get_packets(napi_env env, napi_value *argv, const char *fn, int withAddrs, packet_args *a);

#endif
