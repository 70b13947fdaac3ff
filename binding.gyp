# The addon: the shared sources compile into the static library
# lwt_native_core, native/module.c (the export table) links it into
# lwt_native.node. Every target gets the same flags.
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
      "sources": ["native/module.c", "native/testing.c"],
      "cflags": ["<@(lwt_cflags)"],
      "defines": ["<@(lwt_defines)", "LWT_TESTING"]
    }
  ]
}
