/*
 * napi_util: errno names, the throw helpers, the argument parser and the
 * batch checks every binding shares (contracts in napi_util.h).
 *
 * Flow: parse_args -> get_args (argv) -> parse_argv: one pass over the specs
 * type- and range-checks each argument into its C variable (parse_one), a
 * second pass checks the arrays' minimum lengths, in spec order. Every check
 * that fails throws here and returns -1; nothing of a batch is touched until
 * the binding's own checks (check_slots, ...) pass too.
 */
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case EBADFD: return "EBADFD";
    case ENOTSOCK: return "ENOTSOCK";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNRESET: return "ECONNRESET";
    case ENOBUFS: return "ENOBUFS";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTDOWN: return "EHOSTDOWN";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    default: return "EUNKNOWN";
  }
}

void throw_errno(napi_env env, int e, const char *fn, const char *syscall) {
  char msg[256];
  const char *code = errno_name(e);
  snprintf(msg, sizeof msg, "%s: %s failed: %s (%s)", fn, syscall, strerror(e), code);
  napi_value vcode, vmsg, err, vsys, verrno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &vcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &vmsg) != napi_ok ||
      napi_create_error(env, vcode, vmsg, &err) != napi_ok) {
    napi_throw_error(env, code, msg);
    return;
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &vsys) == napi_ok)
    napi_set_named_property(env, err, "syscall", vsys);
  if (napi_create_int32(env, -e, &verrno) == napi_ok)
    napi_set_named_property(env, err, "errno", verrno);
  napi_throw(env, err);
}

void throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

void throw_range(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

void throw_internal(napi_env env, const char *fn) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: internal N-API failure", fn);
    napi_throw_error(env, "ERR_NATIVE_INTERNAL", msg);
  }
}

napi_value make_int(napi_env env, int64_t x) {
  napi_value v = NULL;
  napi_create_int64(env, x, &v);
  return v;
}

/* ------------------------------------------------------------------ */
/* Arguments: each helper returns 0, or -1 with an exception set       */
/* ------------------------------------------------------------------ */

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) { throw_internal(env, fn); return -1; }
  return 0;
}

/* v is of JS type `want`, else a TypeError "<name> must be <a/an> <what>". */
static int want_type(napi_env env, napi_value v, napi_valuetype want, const char *fn, const char *name, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) { throw_internal(env, fn); return -1; }
  if (t != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be %s", name, what);
    throw_type(env, fn, msg);
    return -1;
  }
  return 0;
}

/* An integral Number in [min, max]. */
static int get_int(napi_env env, napi_value v, const char *fn, const char *name, int64_t min, int64_t max, int64_t *out) {
  if (want_type(env, v, napi_number, fn, name, "a number")) return -1;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) { throw_internal(env, fn); return -1; }
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    char what[160];
    snprintf(what, sizeof what, "%s must be an integer in [%lld, %lld]", name, (long long)min, (long long)max);
    throw_range(env, fn, what);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}

/* A string of at most maxLen UTF-8 bytes without NUL, copied into buf (size > maxLen). */
static int get_string(napi_env env, napi_value v, const char *fn, const char *name, char *buf, size_t maxLen) {
  char what[160];
  if (want_type(env, v, napi_string, fn, name, "a string")) return -1;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) { throw_internal(env, fn); return -1; }
  if (len > maxLen) {
    snprintf(what, sizeof what, "%s is %zu bytes long; at most %zu are allowed", name, len, maxLen);
    throw_range(env, fn, what);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, maxLen + 1, &len) != napi_ok) { throw_internal(env, fn); return -1; }
  if (strlen(buf) != len) {
    snprintf(what, sizeof what, "%s must not contain a NUL character", name);
    throw_range(env, fn, what);
    return -1;
  }
  return 0;
}

int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *fn, const char *name, void **data, size_t *len) {
  static const char *kind[] = {
    [napi_int8_array] = "Int8Array", [napi_uint8_array] = "Uint8Array",
    [napi_uint8_clamped_array] = "Uint8ClampedArray", [napi_int16_array] = "Int16Array",
    [napi_uint16_array] = "Uint16Array", [napi_int32_array] = "Int32Array",
    [napi_uint32_array] = "Uint32Array", [napi_float32_array] = "Float32Array",
    [napi_float64_array] = "Float64Array", [napi_bigint64_array] = "BigInt64Array",
    [napi_biguint64_array] = "BigUint64Array",
  };
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok) { throw_internal(env, fn); return -1; }
  napi_typedarray_type type = napi_int8_array;
  void *p = NULL;
  size_t n = 0;
  if (is && napi_get_typedarray_info(env, v, &type, &n, &p, NULL, NULL) != napi_ok) { throw_internal(env, fn); return -1; }
  if (!is || type != want) {
    char what[160];
    snprintf(what, sizeof what, "%s must be a %s", name, kind[want]);
    throw_type(env, fn, what);
    return -1;
  }
  *data = p;
  *len = n;
  return 0;
}

/* One argument by its spec; an array's length goes to *len. */
static int parse_one(napi_env env, const char *fn, napi_value v, const arg_spec *s, size_t *len) {
  int64_t x;
  switch (s->kind) {
    case ARG_K_FD:
      if (get_int(env, v, fn, s->name, s->min, s->max, &x)) return -1;
      *(int *)s->out = (int)x;
      return 0;
    case ARG_K_INT:
      return get_int(env, v, fn, s->name, s->min, s->max, (int64_t *)s->out);
    case ARG_K_BOOL:
      if (want_type(env, v, napi_boolean, fn, s->name, "a boolean")) return -1;
      if (napi_get_value_bool(env, v, (bool *)s->out) != napi_ok) { throw_internal(env, fn); return -1; }
      return 0;
    case ARG_K_STRING:
      return get_string(env, v, fn, s->name, (char *)s->out, (size_t)s->max);
    case ARG_K_ARRAY:
      return get_ta(env, v, s->ta, fn, s->name, (void **)s->out, len);
    case ARG_K_FUNCTION:
      if (want_type(env, v, napi_function, fn, s->name, "a function")) return -1;
      *(napi_value *)s->out = v;
      return 0;
    case ARG_K_VALUE:
      *(napi_value *)s->out = v;
      return 0;
  }
  throw_internal(env, fn);
  return -1;
}

/* The most arguments a binding takes (udpRecvGro: 10). */
#define MAX_ARGS 12

int parse_argv(napi_env env, const char *fn, napi_value *argv, const arg_spec *specs, size_t n) {
  size_t lens[MAX_ARGS];
  if (n > MAX_ARGS) { throw_internal(env, fn); return -1; }
  for (size_t i = 0; i < n; i++) {
    lens[i] = 0;
    if (parse_one(env, fn, argv[i], &specs[i], &lens[i])) return -1;
    if (specs[i].len) *specs[i].len = lens[i];
  }
  for (size_t i = 0; i < n; i++) {
    const arg_spec *s = &specs[i];
    if (s->kind == ARG_K_ARRAY && s->mult != 0 && check_count(env, fn, s->name, lens[i], s->mult * (s->per ? *s->per : 1))) return -1;
  }
  return 0;
}

int parse_args(napi_env env, napi_callback_info info, const char *fn, const arg_spec *specs, size_t n) {
  napi_value argv[MAX_ARGS];
  if (n > MAX_ARGS) { throw_internal(env, fn); return -1; }
  if (get_args(env, info, n, argv, fn)) return -1;
  return parse_argv(env, fn, argv, specs, n);
}

int get_fd_args(napi_env env, napi_callback_info info, const char *fn, size_t argc, napi_value *argv, int *fd) {
  if (get_args(env, info, argc, argv, fn)) return -1;
  return PARSE_ARGV(env, fn, argv, ARG_FD(fd));
}

/* ------------------------------------------------------------------ */
/* Batch checks                                                        */
/* ------------------------------------------------------------------ */

int check_slots(napi_env env, const char *fn, size_t memLen, const int32_t *offsets, const int32_t *lens, int64_t cap, int64_t n) {
  char what[200];
  for (int64_t i = 0; i < n; i++) {
    int64_t off = offsets[i];
    int64_t len = lens ? lens[i] : cap;
    if (off < 0 || len < 0 || off + len > (int64_t)memLen) {
      snprintf(what, sizeof what, "slot %lld (offset %lld, length %lld) is outside mem (%zu bytes)",
               (long long)i, (long long)off, (long long)len, memLen);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

int check_count(napi_env env, const char *fn, const char *arr, size_t have, int64_t need) {
  if ((int64_t)have < need) {
    char what[160];
    snprintf(what, sizeof what, "%s holds %zu entries but %lld are needed", arr, have, (long long)need);
    throw_range(env, fn, what);
    return -1;
  }
  return 0;
}

static int check_addrs(napi_env env, const char *fn, const uint32_t *addrs, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (addrs[2 * i + 1] > 65535) {
      char what[128];
      snprintf(what, sizeof what, "addrs[%lld] (port of datagram %lld) is %u, above 65535",
               (long long)(2 * i + 1), (long long)i, addrs[2 * i + 1]);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

int get_packets(napi_env env, napi_value *argv, const char *fn, int withAddrs, packet_args *a) {
  a->addrs = NULL;
  if (withAddrs ? PARSE_ARGV(env, fn, argv, ARG_U8("mem", &a->mem, &a->memLen), ARG_I32_N("offsets", &a->offsets, 1, &a->n),
                             ARG_I32_N("lens", &a->lens, 1, &a->n), ARG_U32_N("addrs", &a->addrs, 2, &a->n),
                             ARG_INT("n", 0, INT32_MAX, &a->n))
                : PARSE_ARGV(env, fn, argv, ARG_U8("mem", &a->mem, &a->memLen), ARG_I32_N("offsets", &a->offsets, 1, &a->n),
                             ARG_I32_N("lens", &a->lens, 1, &a->n), ARG_INT("n", 0, INT32_MAX, &a->n))) return 1;
  if (check_slots(env, fn, a->memLen, a->offsets, a->lens, 0, a->n)) return 1;
  if (withAddrs && check_addrs(env, fn, a->addrs, a->n)) return 1;
  return 0;
}
