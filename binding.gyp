# Two addons from one set of objects: lwt_native.node (production) and
# lwt_native_testing.node (the same plus native/testing.c's test-only
# exports, LWT_TESTING). The shared sources compile once, into the static
# library lwt_native_core; only native/module.c (the export table) compiles
# per addon. Every target gets the same flags.
#
# lwt_testing (default: 1 when native/testing.c exists, i.e. in a clone; the
# npm package does not ship it, so a user's install builds only lwt_native).
# Override with `node-gyp rebuild -- -Dlwt_testing=0`.
#
# native/notify.c (sd_notify for Type=notify units) is in the core library:
# the production addon exports it.
{
  "variables": {
    "lwt_testing%": "<!(node -p \"require('fs').existsSync('native/testing.c') ? 1 : 0\")",
    "lwt_cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
    "lwt_defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "lwt_native_core",
      "type": "static_library",
      "sources": [
        "native/addr6.c", "native/aead.c", "native/chacha20poly1305.c", "native/faketcp.c", "native/faketcp-packet.c", "native/fastpath.c", "native/fec.c", "native/napi_util.c",
        "native/notify.c", "native/offload.c", "native/poll.c", "native/tcplisten.c", "native/tun.c", "native/udp.c"
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
    }
  ],
  "conditions": [
    ["lwt_testing==1", {
      "targets": [
        {
          "target_name": "lwt_native_testing",
          "dependencies": ["lwt_native_core"],
          "sources": ["native/module.c", "native/testing.c"],
          "cflags": ["<@(lwt_cflags)"],
          "defines": ["<@(lwt_defines)", "LWT_TESTING"]
        }
      ]
    }]
  ]
}
