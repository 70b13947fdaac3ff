# Two addons from one set of objects: lwt_native.node (production) and
# lwt_native_testing.node (the same plus native/testing.c's test-only
# exports, LWT_TESTING). The shared sources compile once, into the static
# library lwt_native_core; only native/module.c (the export table) compiles
# per addon. Every target gets the same flags.
{
  "variables": {
    "lwt_cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
    "lwt_defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "lwt_native_core",
      "type": "static_library",
      "sources": [
        "native/aead.c", "native/chacha20poly1305.c", "native/fastpath.c", "native/napi_util.c",
        "native/offload.c", "native/poll.c", "native/tun.c", "native/udp.c"
      ],
      "cflags": ["<@(lwt_cflags)"],
      "defines": ["<@(lwt_defines)", "BUILDING_NODE_EXTENSION"]
    },
    {
      "target_name": "lwt_native",
      "dependencies": ["lwt_native_core"],
      "sources": ["native/module.c"],
      "cflags": ["<@(lwt_cflags)"],
      "defines": ["<@(lwt_defines)"]
    },
    {
      "target_name": "lwt_native_testing",
      "dependencies": ["lwt_native_core"],
      "sources": ["native/module.c", "native/testing.c"],
      "cflags": ["<@(lwt_cflags)"],
      "defines": ["<@(lwt_defines)", "LWT_TESTING"]
    }
  ]
}
